// QLoRA's init: Q = q(W), A ~ Kaiming-uniform as PEFT draws it (a = √5, so the bound is
// 1/√in), B = 0: the adapter starts as an exact no-op and all of q's error remains.
import { codebookFor } from '../quant/blockwise';
import { TensorScope } from '../tensor/device';
import { matrix } from '../tensor/matrix';
import { Rng } from '../util/random';
import { lowRankSpectrum, SPECTRUM_TAIL } from './spectrum';
import type { Initializer, MatrixInitResult } from './types';

export const qloraInit: Initializer = {
  method: 'qlora',
  async init(w, options, ctx): Promise<MatrixInitResult> {
    const { device } = ctx;
    const codebook = codebookFor(options.quant);
    const scope = new TensorScope();
    try {
      const quantized = scope.track(await device.allocQuantized(w.rows * w.cols, codebook));
      const diff = scope.track(await device.zeros(w.rows, w.cols));
      const { errSq } = await device.quantize(w, w, quantized, codebook, { diff });
      const norm = Math.sqrt(await device.sumSquares(w)) || 1;
      const errQ = Math.sqrt(errSq) / norm;
      const bound = 1 / Math.sqrt(w.cols);
      const a = new Rng(options.seed).fillUniform(new Float32Array(options.rank * w.cols), -bound, bound) as Float32Array;
      const loraA = scope.track(await device.upload(matrix(options.rank, w.cols, a)));
      const loraB = scope.track(await device.zeros(w.rows, options.rank));
      // W − Q is all that is left (B = 0): its spectrum, as far past r as LoftQ's runs record.
      const k = Math.min(options.rank + SPECTRUM_TAIL, w.rows, w.cols);
      const residualSpectrum = (await lowRankSpectrum(device, diff, { ...options, rank: k })).slice(0, k);
      ctx.onStep?.(1, errQ);
      return {
        quantized: scope.keep(quantized),
        loraA: scope.keep(loraA),
        loraB: scope.keep(loraB),
        errQ,
        errInit: errQ,
        stepErrors: [errQ],
        bestStep: 1,
        stoppedEarly: false,
        errorRose: false,
        residualSpectrum,
      };
    } finally {
      scope.dispose();
    }
  },
};

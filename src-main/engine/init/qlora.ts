// QLoRA's init: Q = q(W), A ~ Kaiming-uniform as PEFT draws it (a = √5, so the bound is
// 1/√in), B = 0: the adapter starts as an exact no-op and all of q's error remains.
import { BlockQuantizer } from '../quant/blockwise';
import { matrix, frobeniusNorm, type Matrix } from '../tensor/matrix';
import { Rng } from '../util/random';
import { lowRankSpectrum } from './spectrum';
import type { Initializer, InitContext, MatrixInitOptions, MatrixInitResult } from './types';

export const qloraInit: Initializer = {
  method: 'qlora',
  async init(w: Matrix, options: MatrixInitOptions, ctx: InitContext): Promise<MatrixInitResult> {
    const quantizer = new BlockQuantizer(options.quant);
    const quantized = quantizer.quantize(w.data);
    const diff = new Float32Array(w.data.length);
    const errSq = quantizer.quantizeInto(w.data, quantized, w.data, diff);
    const norm = frobeniusNorm(w.data) || 1;
    const errQ = Math.sqrt(errSq) / norm;
    const bound = 1 / Math.sqrt(w.cols);
    const loraA = matrix(options.rank, w.cols, new Rng(options.seed).fillUniform(new Float32Array(options.rank * w.cols), -bound, bound) as Float32Array);
    const loraB = matrix(w.rows, options.rank);
    const residualSpectrum = await lowRankSpectrum(ctx.backend, matrix(w.rows, w.cols, diff), options);
    ctx.onStep?.(1, errQ);
    return { quantized, loraA, loraB, errQ, errInit: errQ, stepErrors: [errQ], residualSpectrum };
  },
};

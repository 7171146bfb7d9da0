// The devices the model and training suites run on: CUDA (the GPU machine; skipped elsewhere
// with the reason, a failure under LOFTQ_REQUIRE_CUDA=1), and everywhere the CUDA operations
// (tensor/cuda-nn.ts) over the JavaScript model of the addon's kernels (fake-cuda-native.ts).
import { CudaDevice } from '../engine/tensor/cuda-device';
import { CudaNeuralOps } from '../engine/tensor/cuda-nn';
import type { ComputePrecision, NeuralOptions, NeuralOps } from '../engine/tensor/nn';
import { cudaAvailability, requireCuda } from './devices';
import { fakeCudaNative } from './fake-cuda-native';

export interface Backend {
  neuralOps(precision: ComputePrecision, limits?: NeuralOptions): NeuralOps;
  /** Device buffers still allocated (the JS model counts them), or null. */
  live(): number | null;
  dispose(): Promise<void>;
}

/** [name, enabled, why skipped (a title suffix), open]. */
export function neuralBackends(): Array<[string, boolean, string, () => Backend]> {
  const cuda = cudaAvailability();
  return [
    [
      'CUDA',
      cuda.ok || requireCuda(),
      cuda.ok ? '' : `: skipped, ${cuda.ok ? '' : cuda.reason}`,
      () => {
        const device = CudaDevice.open();
        return { neuralOps: (p, l) => device.neuralOps(p, l), live: () => null, dispose: () => device.dispose() };
      },
    ],
    [
      'the CUDA operations over a JavaScript model of the kernels',
      true,
      '',
      () => {
        const native = fakeCudaNative();
        return { neuralOps: (p, l) => new CudaNeuralOps(native, p, (e) => e, l), live: () => native.live(), dispose: async () => undefined };
      },
    ],
  ];
}

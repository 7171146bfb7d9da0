import { defineConfig } from 'vitest/config';

// `npm run test:cuda` (on a machine with an NVIDIA GPU and the addon built): the suites that
// run on every device, and the CLI on CUDA. LOFTQ_REQUIRE_CUDA=1 turns "CUDA unavailable"
// from a skip into a failure. The CPU variants run here too, as the reference.
export default defineConfig({
  test: {
    include: [
      'src-main/engine/tensor/*.test.ts',
      'src-main/engine/lowrank/*.test.ts',
      'src-main/engine/init/*.test.ts',
      'src-main/engine/model/device-model.test.ts',
      'src-main/engine/train/device-trainer.test.ts',
      'src-main/cli/cuda.e2e.test.ts',
      'src-main/cli/cuda-eval.e2e.test.ts',
      'src-main/cli/cuda-train.e2e.test.ts',
    ],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});

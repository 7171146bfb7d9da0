// Runs a numerical test suite on every device: the CPU always, CUDA where the native addon is
// built and a GPU answers. Elsewhere the CUDA variant is reported as skipped with the reason;
// with LOFTQ_REQUIRE_CUDA=1 (npm run test:cuda on the GPU machine) an unavailable GPU fails.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { CpuDevice } from '../engine/tensor/cpu-device';
import { CudaDevice, CudaUnavailable } from '../engine/tensor/cuda-device';
import type { ComputeDevice, DeviceMatrix } from '../engine/tensor/device';
import type { Matrix } from '../engine/tensor/matrix';
import type { SvdResult } from '../engine/lowrank';

export type DeviceKindUnderTest = 'cpu' | 'cuda';

let cudaProbe: { ok: true } | { ok: false; reason: string } | null = null;

/** Whether CUDA can run here (decided once per test file, synchronously, at collection). */
export function cudaAvailability(): { ok: true } | { ok: false; reason: string } {
  if (!cudaProbe) {
    try {
      // Opening proves the addon, the driver, cuBLAS and a GPU; the suites open their own.
      CudaDevice.open();
      cudaProbe = { ok: true };
    } catch (e) {
      if (!(e instanceof CudaUnavailable)) throw e;
      cudaProbe = { ok: false, reason: e.message };
    }
  }
  return cudaProbe;
}

export function requireCuda(): boolean {
  return process.env.LOFTQ_REQUIRE_CUDA === '1';
}

/**
 * describe(title) once per device. `body` gets a getter for the suite's device (opened in
 * beforeAll, disposed in afterAll) and the device kind.
 */
export function describeOnDevices(title: string, body: (device: () => ComputeDevice, kind: DeviceKindUnderTest) => void): void {
  for (const kind of ['cpu', 'cuda'] as const) {
    const name = `${title} [${kind}]`;
    if (kind === 'cuda') {
      const cuda = cudaAvailability();
      if (!cuda.ok) {
        if (requireCuda()) {
          describe(name, () => {
            it('needs CUDA (LOFTQ_REQUIRE_CUDA=1)', () => {
              throw new Error(`CUDA is not available: ${cuda.reason}`);
            });
          });
        } else {
          describe.skip(`${name}: skipped, ${cuda.reason}`, () => {
            it('needs a GPU', () => undefined);
          });
        }
        continue;
      }
    }
    describe(name, () => {
      let device: ComputeDevice | null = null;
      beforeAll(() => {
        device = kind === 'cpu' ? new CpuDevice() : CudaDevice.open();
      });
      afterAll(async () => {
        await device?.dispose();
      });
      body(() => {
        if (!device) throw new Error('device not open yet (use it inside a test)');
        return device;
      }, kind);
    });
  }
}

/** A host copy of an SVD with its device factors freed. */
export interface HostSvd {
  U: Matrix;
  S: Float64Array;
  V: Matrix;
  spectrum: Float64Array;
  rounds?: number;
  converged?: boolean;
}

export async function hostSvd(device: ComputeDevice, svd: SvdResult): Promise<HostSvd> {
  try {
    return { ...svd, U: await device.download(svd.U), V: await device.download(svd.V) };
  } finally {
    svd.U.dispose();
    svd.V.dispose();
  }
}

/** Runs fn on an uploaded copy of m and frees it. */
export async function withUploaded<T>(device: ComputeDevice, m: Matrix, fn: (d: DeviceMatrix) => Promise<T>): Promise<T> {
  const d = await device.upload(m);
  try {
    return await fn(d);
  } finally {
    d.dispose();
  }
}

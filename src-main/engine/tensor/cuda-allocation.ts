// One device allocation of the CUDA addon, freed once (dispose, or the addon's finalizer as a
// safety net), and the check every CUDA operation makes of the handles it is given.
import type { CudaNative, NativeBuffer } from './cuda-addon';

export class CudaAllocation {
  private freed = false;
  constructor(
    protected readonly native: CudaNative,
    readonly buf: NativeBuffer,
  ) {}
  dispose(): void {
    if (this.freed) return;
    this.freed = true;
    this.native.free(this.buf);
  }
  get live(): boolean {
    return !this.freed;
  }
}

/** t as a live `kind`, or an error naming what was wrong (another device's handle, a freed one). */
export function liveAs<T extends { live: boolean }>(t: unknown, kind: new (...args: never[]) => T, what: string, where: string): T {
  if (!(t instanceof kind)) throw new Error(`${what} of another device was passed to the ${where}`);
  if (!t.live) throw new Error(`${what} was used after dispose()`);
  return t;
}

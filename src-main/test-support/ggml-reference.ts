// llama.cpp's own quantizers as the judge of ours: ggml's libggml-base.so (from node-llama-cpp's
// prebuilt linux-x64 binaries) called through Python's ctypes, since Node cannot call a C
// library directly. ggml_quantize_chunk is what llama-quantize runs for q4_0 and q8_0.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LIB = join(process.cwd(), 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64', 'libggml-base.so');

function python(): string | null {
  try {
    execFileSync('python3', ['-c', 'import ctypes'], { stdio: 'ignore' });
    return 'python3';
  } catch {
    return null;
  }
}

/** Why the reference cannot run here, or null when it can. */
export function ggmlReferenceUnavailable(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'node-llama-cpp ships libggml-base.so for linux-x64 only';
  if (!existsSync(LIB)) return `${LIB} is missing (npm install node-llama-cpp)`;
  if (python() === null) return 'python3 with ctypes is not installed';
  return null;
}

const SCRIPT = `
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
mode, src_path, out_path = sys.argv[2], sys.argv[3], sys.argv[4]
src = open(src_path, 'rb').read()
n = len(src) // 4
buf = ctypes.create_string_buffer(src, len(src))
if mode == 'fp16':
    lib.ggml_fp32_to_fp16_row.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    out = ctypes.create_string_buffer(n * 2)
    lib.ggml_fp32_to_fp16_row(buf, out, n)
    open(out_path, 'wb').write(out.raw)
else:
    ggml_type, rows, cols = int(mode), int(sys.argv[5]), int(sys.argv[6])
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    out = ctypes.create_string_buffer(n * 2)
    size = lib.ggml_quantize_chunk(ggml_type, buf, out, 0, rows, cols, None)
    open(out_path, 'wb').write(out.raw[:size])
`;

function call(dir: string, mode: string, x: Float32Array, extra: string[] = []): Uint8Array {
  const src = join(dir, 'ggml-in.bin');
  const out = join(dir, 'ggml-out.bin');
  writeFileSync(src, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  execFileSync('python3', ['-c', SCRIPT, LIB, mode, src, out, ...extra], { stdio: ['ignore', 'ignore', 'inherit'] });
  return new Uint8Array(readFileSync(out));
}

/** ggml's bytes for x ([rows, cols] row-major) quantized to Q4_0 (type 2) or Q8_0 (type 8). */
export function ggmlQuantize(dir: string, type: 'Q4_0' | 'Q8_0', x: Float32Array, rows: number, cols: number): Uint8Array {
  return call(dir, String(type === 'Q4_0' ? 2 : 8), x, [String(rows), String(cols)]);
}

/** ggml's fp16 bits of each value. */
export function ggmlToHalf(dir: string, x: Float32Array): Uint16Array {
  const b = call(dir, 'fp16', x);
  return new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
}

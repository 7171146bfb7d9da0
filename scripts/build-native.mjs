// Builds the CUDA addon native/build/loftq_cuda.node with nvcc (`npm run build:native`). It
// needs the CUDA 13 toolkit (nvcc and the cuBLAS headers) and nothing at run time but the
// NVIDIA driver and cuBLAS 13 (see README: "GPU"). The CUDA runtime is linked statically;
// libcuda and cuBLAS are opened at run time by the addon itself. The functions' argument
// readers and registration come from their one declaration, the CudaNative interface of
// src-main/engine/tensor/cuda-addon.ts (scripts/addon-api.mjs writes native/build/generated/).
//   LOFTQ_CUDA_ARCHS=80,86,89,90   GPU architectures to build for (default below)
//   NVCC=/path/to/nvcc             the compiler (default: $CUDA_HOME/bin/nvcc, then PATH)
//   CUDA_EXTRA_INCLUDE=dir         another header folder (e.g. cuBLAS headers from elsewhere)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ADDON_SOURCE, cppHeader, parseAddonApi, stampState } from './addon-api.mjs';

const root = new URL('..', import.meta.url).pathname;
const require = createRequire(import.meta.url);

function findNvcc() {
  const candidates = [process.env.NVCC, process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin', 'nvcc'), '/usr/local/cuda/bin/nvcc'];
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const nvcc = findNvcc();
if (!nvcc) {
  console.error('build:native: nvcc not found. Install the CUDA 13 toolkit (or set NVCC / CUDA_HOME) and run again.');
  process.exit(1);
}
let napiInclude;
try {
  napiInclude = join(dirname(require.resolve('node-api-headers/package.json')), 'include');
} catch {
  console.error('build:native: the node-api-headers package is missing: run `npm ci` first.');
  process.exit(1);
}
// Turing and newer (what CUDA 13 supports): A100, RTX 30/40 series, H100/H200; PTX of the last
// one lets newer GPUs (Blackwell) compile the kernels at load time.
const archs = (process.env.LOFTQ_CUDA_ARCHS ?? '75,80,86,89,90').split(',').map((a) => a.trim()).filter(Boolean);
const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
gencode.push('-gencode', `arch=compute_${archs.at(-1)},code=compute_${archs.at(-1)}`);

const { stamped, hash } = stampState();
if (stamped !== hash) {
  console.error(`build:native: ADDON_ABI_VERSION in ${ADDON_SOURCE} does not match its CudaNative interface: run node scripts/addon-api.mjs --stamp`);
  process.exit(1);
}
const generated = join(root, 'native', 'build', 'generated');
mkdirSync(generated, { recursive: true });
writeFileSync(join(generated, 'addon-api.h'), cppHeader(parseAddonApi(readFileSync(ADDON_SOURCE, 'utf8'))));

const src = join(root, 'native', 'src');
const sources = readdirSync(src).filter((f) => f.endsWith('.cu') || f.endsWith('.cpp')).sort().map((f) => join(src, f));
const outDir = join(root, 'native', 'build');
mkdirSync(outDir, { recursive: true });
const out = join(outDir, 'loftq_cuda.node');
const includes = [`-I${napiInclude}`, `-I${src}`, `-I${generated}`, ...(process.env.CUDA_EXTRA_INCLUDE ? [`-I${process.env.CUDA_EXTRA_INCLUDE}`] : [])];
const args = [
  '-std=c++17', '-O3', '-shared', '-Xcompiler', '-fPIC,-fvisibility=hidden', '-DNAPI_VERSION=8',
  ...gencode, ...includes, '-o', out, ...sources, '-ldl', '-lpthread',
];
const version = execFileSync(nvcc, ['--version'], { encoding: 'utf8' }).trim().split('\n').at(-1);
console.error(`build:native: ${version}; archs ${archs.join(', ')}`);
const t0 = Date.now();
try {
  execFileSync(nvcc, args, { stdio: 'inherit' });
} catch {
  console.error('build:native: nvcc failed (see above)');
  process.exit(1);
}
writeFileSync(join(outDir, 'build-info.json'), JSON.stringify({ nvcc: version, archs, built: new Date().toISOString() }, null, 2) + '\n');
console.error(`build:native: wrote ${out} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// Makes the inputs of peft_check.py on this machine (the GPU machine has no Node): the demo
// model plus small generated qwen2 and mistral models, quantized and exported with the CLI in
// a spread of settings. Prints the --case arguments for peft_check.py.
//   npx tsx scripts/crosscheck/make-cases.ts OUT_DIR
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeTinyModel } from '../../src-main/test-support/tiny-model';

const out = resolve(process.argv[2] ?? '.xcheck');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const loftq = (...args: string[]) => execFileSync(process.execPath, ['dist/cli.cjs', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });

cpSync('assets/demo-model', join(out, 'demo-model'), { recursive: true });
await writeTinyModel(join(out, 'qwen2'), { architecture: 'qwen2', layers: 2, hidden: 128, heads: 4, kvHeads: 2, intermediate: 256, vocab: 96, tied: true, dtype: 'F32', seed: 3 });
await writeTinyModel(join(out, 'mistral'), { architecture: 'mistral', layers: 3, hidden: 128, heads: 8, kvHeads: 2, intermediate: 192, vocab: 80, dtype: 'F16', seed: 4 });

const cases: Array<[string, string, string[]]> = [
  ['demo-model', 'demo-loftq-nf2-r16', ['--method', 'loftq', '--bits', '2', '--rank', '16']],
  ['demo-model', 'demo-qlora-nf4-r16', ['--method', 'qlora', '--bits', '4', '--rank', '16']],
  ['demo-model', 'demo-loftq-mixed-r8', ['--bits', '2', '--bits-map', 'first:2=4', '--rank', '8', '--alpha', '32', '--iters', '3']],
  ['qwen2', 'qwen2-loftq-nf4-rslora', ['--bits', '4', '--rank', '8', '--alpha', '16', '--rslora', '--targets', 'q_proj,k_proj,v_proj,o_proj']],
  ['mistral', 'mistral-loftq-uniform-exact', ['--bits', '3', '--quant', 'uniform', '--bits-map', 'mlp=8', '--rank', '4', '--svd', 'exact', '--block', '32']],
];
const args: string[] = [];
for (const [model, name, extra] of cases) {
  const run = join(out, name);
  loftq('quantize', join(out, model), '--out', run, ...extra);
  loftq('export', run, '--format', 'peft', '--out', join(out, `${name}-peft`));
  rmSync(join(run, 'backbone'), { recursive: true }); // the export holds a copy; keeps the payload small
  args.push('--case', `${join(out, model)},${run},${join(out, `${name}-peft`)}`);
}
console.log(args.join(' '));

// Lists the node_modules folders vitest needs to run (its dependency closure), for pack.sh:
// the GPU machine has no npm, so the CUDA tests travel with exactly these.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = process.cwd();
const seen = new Set();
function visit(name, from) {
  let dir = null;
  for (let d = from; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) {
      dir = candidate;
      break;
    }
    if (d === dirname(d)) return;
  }
  if (seen.has(dir)) return;
  seen.add(dir);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const optionalPeers = pkg.peerDependenciesMeta ?? {};
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep, dir);
  for (const dep of Object.keys(pkg.peerDependencies ?? {})) if (!optionalPeers[dep]?.optional) visit(dep, dir);
}
visit('vitest', root);
console.log([...seen].map((d) => relative(root, d)).filter((d) => !d.startsWith('node_modules/onnxruntime')).join(' '));

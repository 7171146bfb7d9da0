import { inspectModel } from '../../engine/jobs/inspect';
import type { Output } from '../output';
import { formatTable } from '../table';

export async function inspectCommand(modelDir: string, out: Output): Promise<void> {
  const m = await inspectModel(modelDir);
  out.result(m, () => {
    const head =
      `${m.path}\n` +
      `  ${m.architecture}: ${m.layers} layers, hidden ${m.hidden_size}, intermediate ${m.intermediate_size}, ` +
      `${m.heads} heads (${m.kv_heads} KV) of ${m.head_dim}, vocab ${m.vocab_size}\n` +
      `  ${m.parameters.toLocaleString('en-US')} parameters (${m.torch_dtype}, ${(m.weight_bytes / 2 ** 20).toFixed(1)} MiB in ${m.weight_files} file(s)); ` +
      `${m.targets.length} target matrices hold ${m.target_parameters.toLocaleString('en-US')}\n\n`;
    return head + formatTable(['target', 'shape [out, in]', 'params'], m.targets.map((t) => [t.name, `${t.shape[0]} × ${t.shape[1]}`, t.shape[0] * t.shape[1]]));
  });
}

// The trainable parameters of a LoRA adapter as the training loop sees them: a map from the
// PEFT tensor key (`base_model.model.<module>.lora_A.weight`, adapter/peft.ts adapterKey) to a
// float32 array, in a fixed order (module by module, A then B). The adapter's layout (module
// names and shapes) turns the map back into PEFT matrices for checkpoints and adapter/.
import { adapterKey, type AdapterMatrix } from '../adapter/peft';
import { matrix } from '../tensor/matrix';

export type ParamMap = Map<string, Float32Array>;

export interface AdapterLayoutEntry {
  name: string;
  rank: number;
  inFeatures: number;
  outFeatures: number;
}

export type AdapterLayout = readonly AdapterLayoutEntry[];

export function layoutOf(matrices: readonly AdapterMatrix[]): AdapterLayoutEntry[] {
  return matrices.map((m) => {
    if (m.loraA.rows !== m.loraB.cols) throw new Error(`adapter ${m.name}: lora_A has ${m.loraA.rows} rows, lora_B ${m.loraB.cols} columns`);
    return { name: m.name, rank: m.loraA.rows, inFeatures: m.loraA.cols, outFeatures: m.loraB.rows };
  });
}

/** The parameter shapes by key, in parameter order. */
export function paramShapes(layout: AdapterLayout): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const e of layout) {
    out.set(adapterKey(e.name, 'lora_A'), [e.rank, e.inFeatures]);
    out.set(adapterKey(e.name, 'lora_B'), [e.outFeatures, e.rank]);
  }
  return out;
}

/** Copies of the adapter's matrices as training parameters. */
export function paramsFromAdapter(matrices: readonly AdapterMatrix[]): ParamMap {
  layoutOf(matrices);
  const out: ParamMap = new Map();
  for (const m of matrices) {
    out.set(adapterKey(m.name, 'lora_A'), m.loraA.data.slice());
    out.set(adapterKey(m.name, 'lora_B'), m.loraB.data.slice());
  }
  return out;
}

/** The parameters as PEFT matrices (views of the arrays, not copies). */
export function adapterFromParams(layout: AdapterLayout, params: ReadonlyMap<string, Float32Array>): AdapterMatrix[] {
  return layout.map((e) => ({
    name: e.name,
    loraA: matrix(e.rank, e.inFeatures, params.get(adapterKey(e.name, 'lora_A'))),
    loraB: matrix(e.outFeatures, e.rank, params.get(adapterKey(e.name, 'lora_B'))),
  }));
}

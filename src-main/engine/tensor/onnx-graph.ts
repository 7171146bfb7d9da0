// A small ONNX graph builder: declare inputs, add nodes, mark outputs, serialize to a
// ModelProto that onnxruntime can load from memory. Shapes may be symbolic (strings) so
// that one session serves every matrix size of a kind. Only the nodes an output needs are
// serialized: a definition may compute more than one graph uses (a layer's forward recorded
// for its backward computes the layer's output too, which the backward never reads).
import { ProtoWriter } from './protobuf-writer';

export type ElemType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
export type Dim = number | string;

const ONNX_TYPE: Record<ElemType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

export type AttrValue = number | string | number[] | { floats: number[] } | { float: number };

interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

interface ValueSpec {
  name: string;
  type: ElemType;
  shape: Dim[];
}

interface InitializerSpec {
  name: string;
  type: ElemType;
  dims: number[];
  data: Uint8Array;
}

const IR_VERSION = 8;
const OPSET = 17;

export class OnnxGraph {
  private nodes: NodeSpec[] = [];
  private inputs: ValueSpec[] = [];
  private outputs: ValueSpec[] = [];
  private initializers: InitializerSpec[] = [];
  private counter = 0;

  constructor(private readonly name = 'graph') {}

  input(name: string, type: ElemType, shape: Dim[]): string {
    this.inputs.push({ name, type, shape });
    return name;
  }

  /**
   * Marks `name` as a graph output; with `value`, that value under this name (the node making
   * it is renamed, or an Identity added where the value is an input or already an output).
   */
  output(name: string, type: ElemType, shape: Dim[], value?: string): void {
    if (value !== undefined && value !== name) {
      const maker = this.nodes.find((n) => n.outputs.includes(value));
      if (maker && !this.outputs.some((o) => o.name === value)) {
        for (const n of this.nodes) {
          n.inputs = n.inputs.map((i) => (i === value ? name : i));
          n.outputs = n.outputs.map((o) => (o === value ? name : o));
        }
      } else this.nodes.push({ op: 'Identity', inputs: [value], outputs: [name], attrs: {} });
    }
    this.outputs.push({ name, type, shape });
  }

  /** A constant tensor baked into the model (small things: shapes, scalars). */
  constant(type: 'int64' | 'float32', dims: number[], values: number[]): string {
    const name = `const_${this.counter++}`;
    let data: Uint8Array;
    if (type === 'int64') {
      const a = new BigInt64Array(values.map((v) => BigInt(v)));
      data = new Uint8Array(a.buffer);
    } else {
      data = new Uint8Array(new Float32Array(values).buffer);
    }
    this.initializers.push({ name, type, dims, data });
    return name;
  }

  /** Adds a node; returns its output names (fresh ones unless given). */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs?: string[] | number): string[] {
    const outs = Array.isArray(outputs)
      ? outputs
      : Array.from({ length: outputs ?? 1 }, () => `${op.toLowerCase()}_${this.counter++}`);
    this.nodes.push({ op, inputs, outputs: outs, attrs });
    return outs;
  }

  /** Single-output convenience. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.node(op, inputs, attrs, output ? [output] : 1)[0];
  }

  /** The nodes the outputs depend on, in order, and the constants they read. */
  private live(): { nodes: NodeSpec[]; initializers: InitializerSpec[] } {
    const needed = new Set(this.outputs.map((o) => o.name));
    const keep = new Array<boolean>(this.nodes.length).fill(false);
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (!n.outputs.some((o) => needed.has(o))) continue;
      keep[i] = true;
      for (const input of n.inputs) needed.add(input);
    }
    return { nodes: this.nodes.filter((_, i) => keep[i]), initializers: this.initializers.filter((t) => needed.has(t.name)) };
  }

  serialize(): Uint8Array {
    const { nodes, initializers } = this.live();
    const w = new ProtoWriter();
    w.int(1, IR_VERSION);
    w.string(2, 'loftq-studio');
    w.message(7, (g) => {
      nodes.forEach((n, i) => g.message(1, (nw) => writeNode(nw, n, i)));
      g.string(2, this.name);
      for (const init of initializers) g.message(5, (t) => writeTensor(t, init));
      for (const v of this.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
      for (const v of this.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
    });
    w.message(8, (o) => {
      o.string(1, '');
      o.int(2, OPSET);
    });
    return w.finish();
  }
}

function writeNode(w: ProtoWriter, n: NodeSpec, index: number): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `${n.op}_${index}`);
  w.string(4, n.op);
  for (const [name, value] of Object.entries(n.attrs)) w.message(5, (a) => writeAttr(a, name, value));
}

function writeAttr(w: ProtoWriter, name: string, value: AttrValue): void {
  w.string(1, name);
  if (typeof value === 'number') {
    w.int(3, value);
    w.int(20, 2);
  } else if (typeof value === 'string') {
    w.string(4, value);
    w.int(20, 3);
  } else if (Array.isArray(value)) {
    for (const v of value) w.int(8, v);
    w.int(20, 7);
  } else if ('floats' in value) {
    for (const v of value.floats) w.float(7, v);
    w.int(20, 6);
  } else {
    w.float(2, value.float);
    w.int(20, 1);
  }
}

function writeTensor(w: ProtoWriter, t: InitializerSpec): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, ONNX_TYPE[t.type]);
  w.string(8, t.name);
  w.bytes(9, t.data);
}

function writeValueInfo(w: ProtoWriter, v: ValueSpec): void {
  w.string(1, v.name);
  w.message(2, (tp) =>
    tp.message(1, (tt) => {
      tt.int(1, ONNX_TYPE[v.type]);
      tt.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

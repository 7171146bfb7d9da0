// What the loader needs to know about a parsed tokenizer.json, computed on the tokenizer's worker
// thread (the file can run to tens of MB: it is parsed there, never on the caller's thread).
// This function is shipped to the worker as source text (Function.prototype.toString), so it
// must stay self-contained: no imports, no references to anything outside its own body.

export interface TokenizerSummary {
  isObject: boolean;
  hasModel: boolean;
  /** model.type when it is a string, else its JSON text (for messages). */
  modelType: string;
  modelTypeIsString: boolean;
  vocabIsObject: boolean;
  mergesIsArray: boolean;
  /** Largest token id of the vocabulary and the added tokens (−1: none). */
  maxId: number;
  /** The first special token of the post-processor's template (transformers' BOS rule), or null. */
  templateBos: string | null;
  /** A Prepend("▁") normalizer (Llama 2 / Mistral), possibly inside a Sequence. */
  prepends: boolean;
}

export function summarizeTokenizerJson(json: unknown): TokenizerSummary {
  type Json = Record<string, unknown>;
  const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
  // The first special token of a TemplateProcessing "single" template (possibly inside a
  // Sequence post-processor, as in Llama 3), or null. Depth-bounded: the file's nesting is.
  const templateFirstSpecial = (pp: unknown): string | null => {
    if (!isObject(pp)) return null;
    if (pp.type === 'Sequence' && Array.isArray(pp.processors)) {
      for (const p of pp.processors) {
        const t = templateFirstSpecial(p);
        if (t !== null) return t;
      }
      return null;
    }
    if (pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single)) return null;
    const first: unknown = pp.single[0];
    if (isObject(first) && isObject(first.SpecialToken) && typeof first.SpecialToken.id === 'string') return first.SpecialToken.id;
    return null;
  };
  const hasPrepend = (n: unknown): boolean => {
    if (!isObject(n)) return false;
    if (n.type === 'Prepend') return true;
    return n.type === 'Sequence' && Array.isArray(n.normalizers) && n.normalizers.some(hasPrepend);
  };
  const none: TokenizerSummary = { isObject: false, hasModel: false, modelType: 'null', modelTypeIsString: false, vocabIsObject: false, mergesIsArray: false, maxId: -1, templateBos: null, prepends: false };
  if (!isObject(json)) return none;
  const model = json.model;
  const summary: TokenizerSummary = { ...none, isObject: true, templateBos: templateFirstSpecial(json.post_processor), prepends: hasPrepend(json.normalizer) };
  if (!isObject(model)) return summary;
  summary.hasModel = true;
  summary.modelTypeIsString = typeof model.type === 'string';
  summary.modelType = typeof model.type === 'string' ? model.type.slice(0, 100) : String(JSON.stringify(model.type ?? null)).slice(0, 100);
  summary.vocabIsObject = isObject(model.vocab);
  summary.mergesIsArray = Array.isArray(model.merges);
  if (summary.vocabIsObject) for (const id of Object.values(model.vocab as Json)) if (typeof id === 'number' && id > summary.maxId) summary.maxId = id;
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  for (const t of added) if (isObject(t) && typeof t.id === 'number' && t.id > summary.maxId) summary.maxId = t.id;
  return summary;
}

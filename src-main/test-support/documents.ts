// Test support: a dataset's documents, each its pieces joined (what a reader yields, reassembled).
import type { TextDataset } from '../engine/text/datasets';

export async function documentsOf(ds: TextDataset): Promise<string[]> {
  const docs: string[] = [];
  for await (const piece of ds) {
    if (piece.first || docs.length === 0) docs.push(piece.text);
    else docs[docs.length - 1] += piece.text;
  }
  return docs;
}

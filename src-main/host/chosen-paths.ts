// The folders the user picked in the app's native dialogs, kept in main: an export from the
// app may write only to a folder chosen there, so a renderer (compromised or buggy) cannot
// name another place to write to.
import { resolve } from 'node:path';
import type { PickPurpose } from '../wire/ipc-protocol';

export class ChosenPaths {
  private readonly chosen = new Map<PickPurpose, Set<string>>();

  remember(purpose: PickPurpose, path: string): void {
    let set = this.chosen.get(purpose);
    if (!set) this.chosen.set(purpose, (set = new Set()));
    set.add(resolve(path));
  }

  allows(purpose: PickPurpose, path: unknown): boolean {
    return typeof path === 'string' && path !== '' && (this.chosen.get(purpose)?.has(resolve(path)) ?? false);
  }

  /** A refusal message for a request main must not forward, or null to let it through. */
  check(method: string, params: readonly unknown[]): string | null {
    if (method !== 'startExport') return null;
    const out = (params[0] as { out?: unknown } | undefined)?.out;
    return this.allows('export', out) ? null : 'choose the export folder in the dialog (Export → Choose folder…): the app writes exports only there';
  }
}

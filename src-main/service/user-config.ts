// The user's settings that outlive a process: the port and access token of `loftq serve` (so
// `npm start` comes back at the address open tabs know) and the models opened recently. One
// JSON file in the user's config folder — $XDG_CONFIG_HOME/loftq-studio, else
// ~/.config/loftq-studio (%APPDATA%\loftq-studio on Windows) — readable by the user alone
// (mode 0600: it holds the token). A missing or damaged file reads as empty.
import { chmod, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { writeFileAtomic } from '../engine/io/atomic-write';
import { writeFully } from '../engine/io/fs-util';
import { readJsonObject } from '../engine/io/json-file';

export const CONFIG_FILE = 'config.json';
export const MAX_RECENT_MODELS = 8;
/** Longest path kept in the recent list (anything longer is not a path a person typed). */
const MAX_PATH_CHARS = 4096;
const TOKEN = /^[A-Za-z0-9_-]{32,128}$/;

export interface ServeSettings {
  port: number;
  token: string;
}

export interface UserConfig {
  serve?: ServeSettings;
  recent_models?: string[];
}

/** The folder the settings live in, from the environment as the platform's conventions say. */
export function userConfigDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'loftq-studio');
  if (platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'loftq-studio');
  return join(homedir(), '.config', 'loftq-studio');
}

/** A model path as the recent list keeps it: a non-empty one-line string of sane length. */
export function isKeepablePath(p: unknown): p is string {
  // eslint-disable-next-line no-control-regex
  return typeof p === 'string' && p.length > 0 && p.length <= MAX_PATH_CHARS && !/[\u0000-\u001f]/.test(p);
}

/** Only the fields this version understands, each checked; anything else is dropped. */
function sanitize(raw: Record<string, unknown> | null): UserConfig {
  const out: UserConfig = {};
  const serve = raw?.serve as Partial<ServeSettings> | undefined;
  if (serve && Number.isInteger(serve.port) && serve.port! > 0 && serve.port! <= 65535 && typeof serve.token === 'string' && TOKEN.test(serve.token)) {
    out.serve = { port: serve.port!, token: serve.token };
  }
  if (Array.isArray(raw?.recent_models)) out.recent_models = raw.recent_models.filter(isKeepablePath).slice(0, MAX_RECENT_MODELS);
  return out;
}

export class UserConfigStore {
  readonly file: string;
  /** Updates run one after another, each reading what the last one wrote. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {
    this.file = join(dir, CONFIG_FILE);
  }

  async read(): Promise<UserConfig> {
    try {
      return sanitize(await readJsonObject(this.file, { optional: true, maxBytes: 1 << 20 }));
    } catch {
      return {}; // damaged or not a regular file: start afresh (the next write replaces it)
    }
  }

  /** Applies `change` to the stored settings and writes them back atomically; resolves with the result. */
  update(change: (c: UserConfig) => UserConfig): Promise<UserConfig> {
    const next = this.chain.then(async () => {
      const value = sanitize(change(await this.read()) as Record<string, unknown>);
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const text = new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');
      await writeFileAtomic(this.file, async (fh) => {
        await fh.chmod(0o600);
        await writeFully(fh, text);
      });
      await chmod(this.file, 0o600).catch(() => undefined);
      return value;
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/** The recent list with `path` first (each path once, at most MAX_RECENT_MODELS). */
export function withRecent(list: readonly string[] | undefined, path: string): string[] {
  return [path, ...(list ?? []).filter((p) => p !== path)].slice(0, MAX_RECENT_MODELS);
}

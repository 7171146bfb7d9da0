// Which file of the built dashboard a request path names: the same rule for the web server and
// the app's app:// protocol. Only files under the root (no traversal), client-side routes fall
// back to index.html, a malformed % escape is a bad request.
import { existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export function contentType(path: string): string {
  return CONTENT_TYPES[extname(path)] ?? 'application/octet-stream';
}

export type StaticTarget = { path: string; size: number } | { status: 400 | 403 | 404 };

export function resolveStaticPath(root: string, pathname: string): StaticTarget {
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return { status: 400 };
  }
  if (rel.includes('\0')) return { status: 400 };
  if (rel.endsWith('/')) rel += 'index.html';
  const base = resolve(root);
  const path = resolve(base, normalize(`.${sep}${rel}`));
  if (path !== base && !path.startsWith(base + sep)) return { status: 403 };
  const file = isFile(path) ? path : join(base, 'index.html');
  if (!isFile(file)) return { status: 404 };
  return { path: file, size: statSync(file).size };
}

function isFile(p: string): boolean {
  try {
    return existsSync(p) && statSync(p).isFile();
  } catch {
    return false;
  }
}

// Serves the built renderer: files under one folder only (no traversal), with a strict CSP.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { WEB_CSP } from '../wire/csp';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};


export async function serveStatic(root: string | null, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = { 'Content-Security-Policy': WEB_CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, headers).end();
    return;
  }
  if (!root) {
    res.writeHead(503, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('The dashboard is not built. Run `npm start` (it builds it), or use the API over WebSocket at /api.\n');
    return;
  }
  const url = new URL(req.url ?? '/', 'http://localhost');
  let rel: string;
  try {
    rel = decodeURIComponent(url.pathname);
  } catch {
    // A malformed % escape is the client's error, not the server's.
    res.writeHead(400, headers).end();
    return;
  }
  if (rel.endsWith('/')) rel += 'index.html';
  const base = resolve(root);
  const path = resolve(base, normalize(`.${sep}${rel}`));
  if (path !== base && !path.startsWith(base + sep)) {
    res.writeHead(403, headers).end();
    return;
  }
  const info = await stat(path).catch(() => null);
  const file = info?.isFile() ? path : join(base, 'index.html'); // client-side routes fall back to the app
  const fileInfo = info?.isFile() ? info : await stat(file).catch(() => null);
  if (!fileInfo) {
    res.writeHead(404, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': fileInfo.size, 'Cache-Control': 'no-cache' });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}

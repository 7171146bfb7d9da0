// Serves the built renderer: files under one folder only (no traversal), with a strict CSP.
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WEB_CSP } from '../wire/csp';
import { contentType, resolveStaticPath } from '../wire/static-path';

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
  const target = resolveStaticPath(root, url.pathname);
  if ('status' in target) {
    res.writeHead(target.status, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Type': contentType(target.path), 'Content-Length': target.size, 'Cache-Control': 'no-cache' });
  if (req.method === 'HEAD') res.end();
  else createReadStream(target.path).pipe(res);
}

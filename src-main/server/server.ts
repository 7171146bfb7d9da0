// `loftq serve`: the dashboard and the StudioApi over WebSocket on one HTTP port. Bound to
// 127.0.0.1 unless told otherwise; every WebSocket needs the random token from the printed
// URL, a Host header naming this server (against DNS rebinding) and, from a browser, a
// same-origin Origin (against cross-site WebSocket hijacking).
import { UserError } from '../engine/errors';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StudioApi, WireMessage } from '../api/contract';
import { handleRequest, MAX_REQUEST_BYTES } from '../wire/rpc';
import { serveStatic } from './static-files';

export interface ServerOptions {
  api: StudioApi;
  port: number;
  host: string;
  /** The built renderer (index.html); null serves an explanation instead. */
  staticDir: string | null;
  token?: string;
}

export interface RunningServer {
  url: string;
  token: string;
  port: number;
  close(): Promise<void>;
}

function sameToken(given: string | null, token: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const token = o.token ?? randomBytes(24).toString('base64url');
  const http = createServer((req, res) => {
    // The page asks here whether its token is accepted, since a browser cannot see why a
    // WebSocket upgrade was refused; nothing else is answered on /api over plain HTTP.
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/api/token') {
      const ok = (req.method === 'GET' || req.method === 'HEAD') && allowedHosts.has(req.headers.host ?? '') && sameToken(url.searchParams.get('token'), token);
      res.writeHead(ok ? 204 : 403, { 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    serveStatic(o.staticDir, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_REQUEST_BYTES });
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new UserError(`--port must be a whole number from 0 to 65535, got ${o.port}`);
  await new Promise<void>((resolveListen, reject) => {
    http.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new UserError(`port ${o.port} on ${o.host} is in use by another program: choose another with --port (0 picks a free one)`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') reject(new UserError(`cannot listen on ${o.host}: no such address on this machine`));
      else if (e.code === 'EACCES') reject(new UserError(`not allowed to listen on port ${o.port} (ports below 1024 need privileges)`));
      else reject(e);
    });
    http.listen(o.port, o.host, () => resolveListen());
  });
  const port = (http.address() as AddressInfo).port;
  const allowedHosts = new Set([`${o.host}:${port}`, `127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);

  const accept = (req: IncomingMessage): boolean => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/api' || !sameToken(url.searchParams.get('token'), token)) return false;
    if (!allowedHosts.has(req.headers.host ?? '')) return false;
    const origin = req.headers.origin;
    return origin === undefined || allowedHosts.has(new URL(origin).host);
  };
  http.on('upgrade', (req, socket, head) => {
    let ok = false;
    try {
      ok = accept(req);
    } catch {
      ok = false;
    }
    if (!ok) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => connect(ws));
  });

  const connect = (ws: WebSocket) => {
    const send = (m: WireMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
    };
    const unsubscribe = o.api.onEvent((event) => send({ kind: 'event', event }));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      handleRequest(o.api, data.toString()).then((reply) => {
        if (reply) send(reply);
      });
    });
    ws.on('close', unsubscribe);
    ws.on('error', unsubscribe);
  };

  const shownHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
    token,
    port,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

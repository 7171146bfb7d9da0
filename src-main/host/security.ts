// The app's security decisions as plain functions (main.ts wires them to Electron): which URL
// is our renderer, which IPC sender is trusted, which links may open in the OS browser, and
// the Content-Security-Policy put on every response.
import { APP_CSP } from '../wire/csp';

/** The built dashboard is served from this origin (a privileged custom scheme, not file://). */
export const APP_SCHEME = 'app';
export const APP_HOST = 'studio';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;

/** Where the renderer comes from: electron-vite's dev server, or the built files under `root` served as app://studio/. */
export type RendererLocation = { kind: 'dev'; url: string } | { kind: 'app'; root: string };

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/**
 * The dev server only when not packaged and it is an http(s) URL on this machine (electron-vite
 * sets ELECTRON_RENDERER_URL); otherwise the built file.
 */
export function rendererLocation(isPackaged: boolean, devUrl: string | undefined, rendererRoot: string): RendererLocation {
  const dev = !isPackaged && devUrl ? parse(devUrl) : null;
  if (dev && (dev.protocol === 'http:' || dev.protocol === 'https:') && LOOPBACK.has(dev.hostname)) return { kind: 'dev', url: dev.href };
  return { kind: 'app', root: rendererRoot };
}

/** The URL the window loads. */
export function rendererEntry(location: RendererLocation): string {
  return location.kind === 'dev' ? location.url : `${APP_ORIGIN}/index.html`;
}

/** True when url is a page of our renderer (any route, query or hash of it). */
export function isRendererUrl(url: string, location: RendererLocation): boolean {
  const u = parse(url);
  if (!u) return false;
  if (location.kind === 'dev') return u.origin === new URL(location.url).origin;
  return u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST && u.username === '' && u.password === '';
}

/** What main knows about an IPC message's sender. */
export interface SenderFacts {
  /** event.sender is our window's webContents. */
  fromOurWindow: boolean;
  /** event.senderFrame is that webContents' main frame (not an iframe); false when null. */
  isMainFrame: boolean;
  /** event.senderFrame.url (null when the frame is gone). */
  frameUrl: string | null;
}

export function isTrustedSender(sender: SenderFacts, location: RendererLocation): boolean {
  return sender.fromOurWindow && sender.isMainFrame && sender.frameUrl !== null && isRendererUrl(sender.frameUrl, location);
}

/** A link the OS browser may open (https only), or null: nothing else leaves the app. */
export function externalUrl(url: string): string | null {
  const u = parse(url);
  return u && u.protocol === 'https:' && u.username === '' && u.password === '' ? u.href : null;
}

/**
 * The web mode's policy. The dev server additionally needs inline scripts (the React refresh
 * preamble that @vitejs/plugin-react injects); the packaged app never gets that.
 */
export function contentSecurityPolicy(location: RendererLocation): string {
  if (location.kind === 'app') return APP_CSP;
  // electron-vite's dev server injects inline scripts and a WebSocket of its own (hot reload).
  const dev = new URL(location.url);
  return APP_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace("connect-src 'none'", `connect-src ws://${dev.host} ${dev.origin}`);
}

export type ResponseHeaders = Record<string, string | string[]>;

/** Response headers with our CSP (replacing any the response had) and nosniff. */
export function withSecurityHeaders(headers: ResponseHeaders | undefined, csp: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower === 'content-security-policy' || lower === 'content-security-policy-report-only' || lower === 'x-content-type-options') continue;
    out[name] = Array.isArray(value) ? value : [value];
  }
  out['Content-Security-Policy'] = [csp];
  out['X-Content-Type-Options'] = ['nosniff'];
  return out;
}

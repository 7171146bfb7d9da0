// The app's security decisions: renderer URLs, IPC senders, external links, CSP headers.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { APP_CSP } from '../wire/csp';
import { resolveStaticPath } from '../wire/static-path';
import { APP_ORIGIN, contentSecurityPolicy, externalUrl, isRendererUrl, isTrustedSender, rendererEntry, rendererLocation, withSecurityHeaders, type RendererLocation } from './security';

const root = join('/opt', 'LoftQ Studio', 'resources', 'app.asar', 'out', 'renderer');
const index = join(root, 'index.html');
const file: RendererLocation = { kind: 'app', root };
const dev: RendererLocation = { kind: 'dev', url: 'http://localhost:5173/' };
const indexUrl = `${APP_ORIGIN}/index.html`;

describe('rendererLocation', () => {
  it('uses the dev server only when not packaged and on this machine', () => {
    expect(rendererLocation(false, 'http://localhost:5173', root)).toEqual({ kind: 'dev', url: 'http://localhost:5173/' });
    expect(rendererLocation(false, 'http://127.0.0.1:5174/', root)).toEqual({ kind: 'dev', url: 'http://127.0.0.1:5174/' });
    expect(rendererLocation(true, 'http://localhost:5173', root)).toEqual(file);
    expect(rendererLocation(false, undefined, root)).toEqual(file);
    expect(rendererLocation(false, 'https://evil.example/', root)).toEqual(file);
    expect(rendererLocation(false, 'file:///tmp/x.html', root)).toEqual(file);
    expect(rendererLocation(false, 'not a url', root)).toEqual(file);
    // The built app is loaded from the custom scheme, never from file://.
    expect(rendererEntry(file)).toBe('app://studio/index.html');
    expect(rendererEntry(dev)).toBe('http://localhost:5173/');
  });
});

describe('the app:// protocol serves the built files only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loftq-app-proto-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<html></html>');
  writeFileSync(join(dir, 'assets', 'app.js'), 'x');
  writeFileSync(join(tmpdir(), 'loftq-secret.txt'), 's');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('maps paths under the root, falls back to index.html for routes, refuses traversal and bad escapes', () => {
    expect(resolveStaticPath(dir, '/assets/app.js')).toMatchObject({ path: join(dir, 'assets', 'app.js') });
    expect(resolveStaticPath(dir, '/runs/abc')).toMatchObject({ path: join(dir, 'index.html') });
    expect(resolveStaticPath(dir, '/..%2floftq-secret.txt')).toEqual({ status: 403 });
    expect(resolveStaticPath(dir, '/%E0%A4%A')).toEqual({ status: 400 });
    expect(resolveStaticPath(dir, '/a%00b')).toEqual({ status: 400 });
  });
});

describe('isRendererUrl', () => {
  it('accepts the app:// origin with any path, hash or query, nothing else (not even the built file)', () => {
    expect(isRendererUrl(indexUrl, file)).toBe(true);
    expect(isRendererUrl(`${indexUrl}#/runs/abc`, file)).toBe(true);
    expect(isRendererUrl(`${indexUrl}?x=1`, file)).toBe(true);
    expect(isRendererUrl(pathToFileURL(index).href, file)).toBe(false);
    expect(isRendererUrl('app://evil/index.html', file)).toBe(false);
    expect(isRendererUrl('app://user:pw@studio/index.html', file)).toBe(false);
    expect(isRendererUrl('file:///etc/passwd', file)).toBe(false);
    expect(isRendererUrl('https://example.com/', file)).toBe(false);
    expect(isRendererUrl('about:blank', file)).toBe(false);
    expect(isRendererUrl('', file)).toBe(false);
    expect(isRendererUrl('file:///%E0%A4%A', file)).toBe(false); // malformed escape
  });

  it('accepts the dev server origin only', () => {
    expect(isRendererUrl('http://localhost:5173/', dev)).toBe(true);
    expect(isRendererUrl('http://localhost:5173/src/main.tsx?t=1', dev)).toBe(true);
    expect(isRendererUrl('http://localhost:5174/', dev)).toBe(false);
    expect(isRendererUrl('https://localhost:5173/', dev)).toBe(false);
    expect(isRendererUrl('http://localhost.evil.example:5173/', dev)).toBe(false);
    expect(isRendererUrl(indexUrl, dev)).toBe(false);
  });
});

describe('isTrustedSender', () => {
  const ok = { fromOurWindow: true, isMainFrame: true, frameUrl: indexUrl };
  it('trusts our window main frame showing our renderer', () => {
    expect(isTrustedSender(ok, file)).toBe(true);
    expect(isTrustedSender({ ...ok, frameUrl: 'http://localhost:5173/#/models' }, dev)).toBe(true);
  });
  it('refuses other windows, subframes, gone frames and other pages', () => {
    expect(isTrustedSender({ ...ok, fromOurWindow: false }, file)).toBe(false);
    expect(isTrustedSender({ ...ok, isMainFrame: false }, file)).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: null }, file)).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: 'https://example.com/' }, file)).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: 'data:text/html,hi' }, file)).toBe(false);
    expect(isTrustedSender(ok, dev)).toBe(false);
  });
});

describe('externalUrl', () => {
  it('lets only https out', () => {
    expect(externalUrl('https://arxiv.org/abs/2310.08659')).toBe('https://arxiv.org/abs/2310.08659');
    expect(externalUrl('http://example.com/')).toBeNull();
    expect(externalUrl('file:///etc/passwd')).toBeNull();
    expect(externalUrl('javascript:alert(1)')).toBeNull();
    expect(externalUrl('smb://host/share')).toBeNull();
    expect(externalUrl('https://user:pw@example.com/')).toBeNull();
    expect(externalUrl('nonsense')).toBeNull();
  });
});

describe('content security policy', () => {
  it('the built app connects nowhere (IPC only); the dev server gets inline scripts and its own hot-reload socket only', () => {
    expect(contentSecurityPolicy(file)).toBe(APP_CSP);
    expect(APP_CSP).toContain("connect-src 'none'");
    const devPolicy = contentSecurityPolicy(dev);
    expect(devPolicy).toContain("script-src 'self' 'unsafe-inline';");
    expect(devPolicy).not.toContain('unsafe-eval');
    const devUrl = new URL((dev as { url: string }).url);
    expect(devPolicy).toContain(`connect-src ws://${devUrl.host} ${devUrl.origin}`);
    expect(devPolicy).not.toMatch(/connect-src[^;]*\b(ws:|wss:|\*)(\s|;|$)/);
  });

  it('replaces whatever policy a response had, keeping the other headers', () => {
    const headers = withSecurityHeaders(
      { 'content-security-policy': ["default-src *"], 'Content-Security-Policy-Report-Only': 'x', 'Content-Type': 'text/html', 'x-content-type-options': ['sniff'], 'Set-Cookie': ['a=1', 'b=2'] },
      'default-src none',
    );
    expect(headers).toEqual({
      'Content-Type': ['text/html'],
      'Set-Cookie': ['a=1', 'b=2'],
      'Content-Security-Policy': ['default-src none'],
      'X-Content-Type-Options': ['nosniff'],
    });
    expect(withSecurityHeaders(undefined, 'p')).toEqual({ 'Content-Security-Policy': ['p'], 'X-Content-Type-Options': ['nosniff'] });
  });
});

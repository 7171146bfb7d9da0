// The Content-Security-Policy of the dashboard, one per way it is served. Neither allows a
// connection anywhere but the engine it talks to: in web mode the page's own origin (its
// WebSocket to /api), in the app nothing at all (it talks over IPC).
const BASE = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/** `loftq serve`: connect-src 'self' covers the page's WebSocket to the same host and port. */
export const WEB_CSP = `${BASE}; connect-src 'self'`;

/** The Electron app: no network connections; the engine answers over IPC. */
export const APP_CSP = `${BASE}; connect-src 'none'`;

// A scriptable stand-in for the browser WebSocket, for transport tests.
import type { WireMessage } from '../../src-main/api/contract';
import type { SocketLike } from '../transport/ws-transport';

export class FakeSocket implements SocketLike {
  readyState = 0;
  sent: WireMessage[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: SocketLike['onopen'] = null;
  onclose: SocketLike['onclose'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onerror: SocketLike['onerror'] = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data) as WireMessage);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // --- the server side ---
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(msg: WireMessage | string): void {
    this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
  }

  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code, reason });
  }

  lastRequest(): Extract<WireMessage, { kind: 'request' }> {
    const m = this.sent[this.sent.length - 1];
    if (!m || m.kind !== 'request') throw new Error('no request sent');
    return m;
  }
}

export function socketFactory() {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    create: (url: string) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    get last(): FakeSocket {
      return sockets[sockets.length - 1];
    },
  };
}

// Hostile servers for the hostile suite: real sockets on 127.0.0.1 (node http/https/net), one
// generic server whose handler each case chooses, plus the answers a hostile server gives
// (huge, endless, trickled, stalled, truncated, redirect loops), a forwarding proxy that wants
// credentials, and a self-signed https origin (openssl) for the downgrade case.
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import { AddressInfo } from 'net';
import type { CaseOutcome, HostileCase } from './properties';

export interface SeenRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void;

export interface Hostile {
  url: string;
  host: string;
  port: number;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** Tracks sockets so close() ends stalled and endless answers at once. */
function track(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

async function listen(server: net.Server, scheme: string, requests: SeenRequest[]): Promise<Hostile> {
  const sockets = track(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An http (or, with tls, https) server answering every request with `handler`. */
export function startHttp(handler: Handler, tls?: { key: string; cert: string }): Promise<Hostile> {
  const requests: SeenRequest[] = [];
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const seen = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body };
      requests.push(seen);
      res.on('error', () => undefined);
      try {
        handler(req, res, seen);
      } catch (err) {
        res.destroy(err as Error);
      }
    });
  };
  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
  server.keepAliveTimeout = 1000;
  return listen(server, tls ? 'https' : 'http', requests);
}

/** A TCP server that accepts connections and never reads or answers. */
/** The case every surface has: a server that accepts connections and never answers. */
export function neverAnswersCase(what: string, run: (server: Hostile) => Promise<CaseOutcome>): HostileCase {
  return { name: `${what} accepts connections and never answers`, classes: ['time'], idle: true, exec: async () => run(await startBlackhole()) };
}

export function startBlackhole(): Promise<Hostile> {
  return listen(
    net.createServer(() => undefined),
    'http',
    [],
  );
}

/** A port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const h = await listen(net.createServer(), 'http', []);
  await h.close();
  return h.port;
}

// ---------------------------------------------------------------- answers

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  sendRaw(res, status, 'application/json; charset=utf-8', JSON.stringify(body), headers);
}

export function sendRaw(res: http.ServerResponse, status: number, contentType: string, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}): void {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': b.length, ...headers });
  res.end(res.req?.method === 'HEAD' ? undefined : b);
}

/** `total` bytes: `prefix`, then filler, written as fast as the client reads (with a length). */
export function sendHuge(
  res: http.ServerResponse,
  status: number,
  contentType: string,
  prefix: string,
  total = 64 << 20,
  headers: http.OutgoingHttpHeaders = {},
): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': total, ...headers });
  const chunk = Buffer.alloc(1 << 20, 'a');
  let sent = 0;
  if (prefix) {
    res.write(prefix);
    sent = Buffer.byteLength(prefix);
  }
  const pump = (): void => {
    while (sent < total && !res.destroyed) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

/** Never ends: `prefix`, then 64 KiB of `filler` every 20 ms (about 3 MB/s), until the client goes. */
export function sendEndless(
  res: http.ServerResponse,
  status: number,
  contentType: string,
  prefix: string,
  filler = 'a',
  headers: http.OutgoingHttpHeaders = {},
): void {
  res.writeHead(status, { 'Content-Type': contentType, ...headers });
  res.write(prefix);
  const piece = Buffer.from(filler.repeat(Math.ceil(65536 / filler.length)));
  const timer = setInterval(() => {
    if (res.destroyed || res.socket?.destroyed) return void clearInterval(timer);
    res.write(piece);
  }, 20);
  res.on('close', () => clearInterval(timer));
}

/** One byte a second, forever past `body` (which announces a length it never reaches). */
export function sendTrickle(res: http.ServerResponse, status: number, contentType: string, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': body.length + 1_000_000, ...headers });
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed || res.socket?.destroyed) return void clearInterval(timer);
    res.write(i < body.length ? body[i] : ' ');
    i++;
  }, 1000);
  res.on('close', () => clearInterval(timer));
}

/** Headers sent, then nothing: the body never comes. */
export function sendHeadersThenStall(res: http.ServerResponse, status: number, contentType: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': 1000 });
  res.flushHeaders();
}

/** Never answers at all (the request stays open until the client gives up). */
export function stall(_res: http.ServerResponse): void {
  /* nothing */
}

/** A body cut short: the first `keep` characters, then the connection closes cleanly. */
export function sendTruncated(
  res: http.ServerResponse,
  status: number,
  contentType: string,
  full: string,
  keep = Math.floor(full.length / 2),
  headers: http.OutgoingHttpHeaders = {},
): void {
  res.writeHead(status, { 'Content-Type': contentType, Connection: 'close', ...headers });
  res.end(full.slice(0, keep));
}

/** 302 back to the same path with a growing counter: a redirect loop. */
export function sendRedirectLoop(res: http.ServerResponse, seen: SeenRequest): void {
  const u = new URL(seen.path, 'http://x');
  const n = Number(u.searchParams.get('loop') ?? '0') + 1;
  u.searchParams.set('loop', String(n));
  res.writeHead(302, { Location: `${u.pathname}${u.search}`, 'Content-Length': 0 });
  res.end();
}

export function htmlPage(status: number, title: string): string {
  return `<!DOCTYPE html>\n<html><head><title>${status} ${title}</title></head>\n<body><center><h1>${status} ${title}</h1></center>\n<hr><center>nginx</center>\n</body></html>\n`;
}

// ---------------------------------------------------------------- proxy, tls

export interface Proxy extends Hostile {
  /** Requests forwarded (absolute-URI or CONNECT). */
  forwarded: number;
  refused: number;
}

/** A forwarding http proxy that wants `Proxy-Authorization: Basic user:password` (407 otherwise). */
export async function startProxy(user: string, password: string): Promise<Proxy> {
  const want = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
  const state = { forwarded: 0, refused: 0 };
  const server = http.createServer((req, res) => {
    if (req.headers['proxy-authorization'] !== want) {
      state.refused++;
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="hostile"', 'Content-Length': 0 });
      return void res.end();
    }
    state.forwarded++;
    const target = new URL(req.url ?? '/');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    socket.on('error', () => undefined);
    if (req.headers['proxy-authorization'] !== want) {
      state.refused++;
      return void socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
    }
    state.forwarded++;
    const [h, p] = (req.url ?? '').split(':');
    const up = net.connect(Number(p), h, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
  });
  const h = await listen(server, 'http', []);
  return Object.assign(h, {
    get forwarded() {
      return state.forwarded;
    },
    get refused() {
      return state.refused;
    },
  });
}

export { selfSignedCert } from '../harness/tls';

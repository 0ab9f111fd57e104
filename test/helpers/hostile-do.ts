// A small hostile DigitalOcean API of our own on 127.0.0.1 for the client's unit tests (real
// sockets, the real http.ts): the registry `reg` exists, every other request goes to the test's handler.
import * as http from 'http';
import { AddressInfo } from 'net';
import { DigitalOceanClient } from '../../tasks/common/services/digitalocean';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const b = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(b), ...headers });
  res.end(b);
}

/** A proxy's error page: not DigitalOcean's JSON. */
export function html(res: http.ServerResponse, status: number): void {
  res.writeHead(status, { 'content-type': 'text/html' });
  res.end('<html><body>nginx says no</body></html>');
}

export interface HostileDoApi {
  url: string;
  /** Every request's path and query, the registry lookup included. */
  hits: string[];
  /** `METHOD path` of every request but the registry lookup. */
  calls: string[];
  close(): Promise<void>;
}

/** The registry exists (GET /v2/registries/reg); everything else goes to `handler`. */
export async function hostileDoApi(handler: Handler): Promise<HostileDoApi> {
  const hits: string[] = [];
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/v2/registries/reg') return json(res, 200, { registry: { name: 'reg' } });
    calls.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    calls,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A client with a quick budget (2 attempts, waits of 10 to 20 ms, 3 s per request). */
export function hostileClient(url: string, token: string): DigitalOceanClient {
  return new DigitalOceanClient(
    { token, apiUrl: url, source: 'env' },
    { maxAttempts: 2, initialBackoffSeconds: 0.01, maxBackoffSeconds: 0.02, requestTimeoutMs: 3000 },
  );
}

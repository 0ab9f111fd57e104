import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import { AddressInfo } from 'net';

/**
 * A tiny static release mirror on 127.0.0.1, laid out like cosign's GitHub
 * releases: `/v<version>/cosign-<os>-<arch>[.exe]`, `/v<version>/cosign_checksums.txt`,
 * and the asset's signatures beside it (`<asset>.sigstore.json`, the keyless bundle of
 * cosign 3.0.1 on; `<asset>.sig`, the release-key signature of 2.0.0 to 3.0.0). Tests use its hooks to serve tampered
 * bytes, hold downloads until several are in flight, redirect, stall or
 * trickle a path, serve over https, and count requests.
 */

export interface MirrorRequest {
  method: string;
  path: string;
  /** process.hrtime.bigint() when the request's headers arrived (same clock as the caller's). */
  atNs: bigint;
  /** When its connection closed (the client gave up, or the answer ended). */
  closedAtNs?: bigint;
}

export interface MirrorOptions {
  /** Unref the server so it does not keep a process alive (L0 scenarios run it inside the task's process). */
  unref?: boolean;
  /** Called for every request as it arrives. */
  onRequest?: (req: MirrorRequest) => void;
  /** Serve https with this key and certificate (PEM) instead of http. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/** How a path misbehaves instead of answering with its file. */
type Fault =
  | { kind: 'redirect'; location: string; status: number }
  | { kind: 'stall' }
  | { kind: 'trickle'; bytesPerSecond: number; declaredLength: number }
  | { kind: 'stream'; bytes: number };

export interface ReleaseOptions {
  /** Asset file name; defaults to the Linux amd64 one. */
  asset?: string;
  /** Publish cosign_checksums.txt for the release (default true). */
  checksums?: boolean;
  /** Lines of cosign_checksums.txt; default: the real digest of `binary` for `asset`. */
  checksumsText?: string;
  /** A Sigstore bundle to publish as `<asset>.sigstore.json` (none by default). */
  bundle?: string | Buffer;
  /** A detached signature to publish as `<asset>.sig` (none by default). */
  sig?: string | Buffer;
}

export function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export class Mirror {
  readonly requests: MirrorRequest[] = [];
  /** The base URL to give the task as downloadBaseUrl. */
  url = '';
  private readonly files = new Map<string, Buffer>();
  private readonly served = new Map<string, Buffer>();
  private readonly types = new Map<string, string>();
  private readonly faults = new Map<string, Fault>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private gate: { path: string; count: number; waiting: (() => void)[] } | undefined;
  private readonly server: http.Server | https.Server;

  constructor(private readonly options: MirrorOptions = {}) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    this.server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler) : http.createServer(handler);
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    if (this.options.unref) this.server.unref();
    this.url = `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Serves `bytes` at an absolute path such as /v3.1.1/cosign-linux-amd64 (as application/octet-stream unless told). */
  setFile(urlPath: string, bytes: Buffer | string, contentType?: string): void {
    this.files.set(urlPath, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
    if (contentType) this.types.set(urlPath, contentType);
    else this.types.delete(urlPath);
  }

  /** Answers GETs of `urlPath` with a redirect to `location` (absolute, any scheme). */
  redirect(urlPath: string, location: string, status = 302): void {
    this.faults.set(urlPath, { kind: 'redirect', location, status });
  }

  /** Accepts requests for `urlPath` and never answers (no status line, no byte). */
  stall(urlPath: string): void {
    this.faults.set(urlPath, { kind: 'stall' });
  }

  /** Answers 200 with a Content-Length of `declaredLength`, then sends one byte every 1/bytesPerSecond s. */
  trickle(urlPath: string, bytesPerSecond = 1, declaredLength = 1 << 20): void {
    this.faults.set(urlPath, { kind: 'trickle', bytesPerSecond, declaredLength });
  }

  /** Answers 200 with `bytes` zero bytes, generated as they are sent (nothing held in memory), chunked. */
  stream(urlPath: string, bytes: number): void {
    this.faults.set(urlPath, { kind: 'stream', bytes });
  }

  /** Back to serving files: no redirect, stall or trickle on `urlPath`. */
  clearFault(urlPath: string): void {
    this.faults.delete(urlPath);
  }

  removeFile(urlPath: string): void {
    this.files.delete(urlPath);
  }

  /** Publishes a release: the binary and (unless told otherwise) a cosign_checksums.txt that lists its real digest. */
  addRelease(version: string, binary: Buffer, options: ReleaseOptions = {}): void {
    const asset = options.asset ?? 'cosign-linux-amd64';
    this.setFile(`/v${version}/${asset}`, binary);
    if (options.checksums ?? true) {
      const text =
        options.checksumsText ?? `${'0'.repeat(64)}  cosign-darwin-arm64\n${sha256(binary)}  ${asset}\n${'f'.repeat(64)}  cosign_${version}_amd64.deb\n`;
      this.setFile(`/v${version}/cosign_checksums.txt`, text);
    } else {
      this.removeFile(`/v${version}/cosign_checksums.txt`);
    }
    for (const [suffix, bytes] of [
      ['.sigstore.json', options.bundle],
      ['.sig', options.sig],
    ] as const) {
      if (bytes === undefined) this.removeFile(`/v${version}/${asset}${suffix}`);
      else this.setFile(`/v${version}/${asset}${suffix}`, bytes);
    }
  }

  /** Serves other bytes at a path than the ones published (a tampered mirror). */
  tamper(urlPath: string, bytes: Buffer | string): void {
    this.served.set(urlPath, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** Serves the published bytes at `urlPath` again. */
  untamper(urlPath: string): void {
    this.served.delete(urlPath);
  }

  /**
   * Holds every GET of `urlPath` until `count` of them are in flight, then answers them all
   * (or after `maxWaitMs`, so a client that never comes cannot hang the others).
   */
  holdUntil(urlPath: string, count: number, maxWaitMs = 15_000): void {
    const gate = { path: urlPath, count, waiting: [] as (() => void)[] };
    this.gate = gate;
    setTimeout(() => this.openGate(gate), maxWaitMs).unref();
  }

  private openGate(gate: NonNullable<Mirror['gate']>): void {
    if (this.gate === gate) this.gate = undefined;
    for (const answer of gate.waiting.splice(0)) answer();
  }

  /** Requests whose path ends with `suffix` (all of them without one). */
  count(suffix = ''): number {
    return this.requests.filter((r) => r.path.endsWith(suffix)).length;
  }

  /**
   * Milliseconds from the first request (any path) to when the connection of the last request
   * ending with `suffix` closed: how long the client held on, measured where the server sees it.
   */
  heldSinceFirstMs(suffix: string): number | undefined {
    const last = this.requests.filter((r) => r.path.endsWith(suffix)).pop();
    const first = this.requests[0];
    if (!last?.closedAtNs || !first) return undefined;
    return Number(last.closedAtNs - first.atNs) / 1e6;
  }

  firstRequestNs(): bigint | undefined {
    return this.requests[0]?.atNs;
  }

  reset(): void {
    this.requests.length = 0;
  }

  close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    return new Promise((resolve) => {
      this.server.closeAllConnections?.();
      this.server.close(() => resolve());
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://mirror').pathname;
    const entry: MirrorRequest = { method: req.method ?? 'GET', path, atNs: process.hrtime.bigint() };
    this.requests.push(entry);
    req.socket.once('close', () => (entry.closedAtNs = process.hrtime.bigint()));
    this.options.onRequest?.(entry);
    const fault = this.faults.get(path);
    if (fault) return this.misbehave(fault, req, res);
    const body = this.served.get(path) ?? this.files.get(path);
    const answer = () => {
      if (!body) {
        res.writeHead(404, { 'Content-Type': 'text/plain', Connection: 'close' });
        res.end('Not Found');
        return;
      }
      res.writeHead(200, { 'Content-Type': this.types.get(path) ?? 'application/octet-stream', 'Content-Length': body.length, Connection: 'close' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const gate = this.gate;
    if (gate && gate.path === path) {
      gate.waiting.push(answer);
      if (gate.waiting.length >= gate.count) this.openGate(gate);
      return;
    }
    answer();
  }

  private misbehave(fault: Fault, req: http.IncomingMessage, res: http.ServerResponse): void {
    if (fault.kind === 'stall') return; // the socket stays open until the client gives up or close()
    if (fault.kind === 'redirect') {
      res.writeHead(fault.status, { Location: fault.location, 'Content-Length': 0, Connection: 'close' });
      res.end();
      return;
    }
    if (fault.kind === 'trickle') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': fault.declaredLength, Connection: 'close' });
      const timer = setInterval(() => res.write('x'), Math.max(1, Math.round(1000 / fault.bytesPerSecond)));
      this.timers.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        this.timers.delete(timer);
      });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', Connection: 'close' });
    const chunk = Buffer.alloc(1 << 20);
    let left = fault.bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => (left = 0));
    if (req.method === 'HEAD') res.end();
    else pump();
  }
}

export function startMirror(options: MirrorOptions = {}): Promise<Mirror> {
  return new Mirror(options).listen();
}

const cache = new Map<string, Buffer>();

/** Reads a (large) file once per process. */
export function readOnce(file: string): Buffer {
  let b = cache.get(file);
  if (!b) {
    b = fs.readFileSync(file);
    cache.set(file, b);
  }
  return b;
}

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';

/**
 * A tiny static release mirror on 127.0.0.1, laid out like cosign's GitHub
 * releases: `/v<version>/cosign-<os>-<arch>[.exe]` and
 * `/v<version>/cosign_checksums.txt`. Tests use its hooks to serve tampered
 * bytes, hold downloads until several are in flight, and count requests.
 */

export interface MirrorRequest {
  method: string;
  path: string;
  /** process.hrtime.bigint() when the request's headers arrived (same clock as the caller's). */
  atNs: bigint;
}

export interface MirrorOptions {
  /** Unref the server so it does not keep a process alive (L0 scenarios run it inside the task's process). */
  unref?: boolean;
  /** Called for every request as it arrives. */
  onRequest?: (req: MirrorRequest) => void;
}

export interface ReleaseOptions {
  /** Asset file name; defaults to the Linux amd64 one. */
  asset?: string;
  /** Publish cosign_checksums.txt for the release (default true). */
  checksums?: boolean;
  /** Lines of cosign_checksums.txt; default: the real digest of `binary` for `asset`. */
  checksumsText?: string;
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
  private gate: { path: string; count: number; waiting: (() => void)[] } | undefined;
  private readonly server: http.Server;

  constructor(private readonly options: MirrorOptions = {}) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    if (this.options.unref) this.server.unref();
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Serves `bytes` at an absolute path such as /v3.1.1/cosign-linux-amd64. */
  setFile(urlPath: string, bytes: Buffer | string): void {
    this.files.set(urlPath, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  removeFile(urlPath: string): void {
    this.files.delete(urlPath);
  }

  /** Publishes a release: the binary and (unless told otherwise) a cosign_checksums.txt that lists its real digest. */
  addRelease(version: string, binary: Buffer, options: ReleaseOptions = {}): void {
    const asset = options.asset ?? 'cosign-linux-amd64';
    this.setFile(`/v${version}/${asset}`, binary);
    if (options.checksums ?? true) {
      const text = options.checksumsText ?? `${'0'.repeat(64)}  cosign-darwin-arm64\n${sha256(binary)}  ${asset}\n${'f'.repeat(64)}  cosign_${version}_amd64.deb\n`;
      this.setFile(`/v${version}/cosign_checksums.txt`, text);
    } else {
      this.removeFile(`/v${version}/cosign_checksums.txt`);
    }
  }

  /** Serves other bytes at a path than the ones published (a tampered mirror). */
  tamper(urlPath: string, bytes: Buffer | string): void {
    this.served.set(urlPath, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
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

  firstRequestNs(): bigint | undefined {
    return this.requests[0]?.atNs;
  }

  reset(): void {
    this.requests.length = 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections?.();
      this.server.close(() => resolve());
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://mirror').pathname;
    const entry: MirrorRequest = { method: req.method ?? 'GET', path, atNs: process.hrtime.bigint() };
    this.requests.push(entry);
    this.options.onRequest?.(entry);
    const body = this.served.get(path) ?? this.files.get(path);
    const answer = () => {
      if (!body) {
        res.writeHead(404, { 'Content-Type': 'text/plain', Connection: 'close' });
        res.end('Not Found');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, Connection: 'close' });
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

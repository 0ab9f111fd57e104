// What every emulated service answers with: JSON bodies, DigitalOcean's error shape, the caller's
// Bearer or Basic credentials, a request body, timestamps, and timers that stop() clears.
import * as http from 'http';
import type { RequestRecord } from './types';

export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function isoMillis(ms: number): string {
  return new Date(ms).toISOString();
}

export function randInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** DigitalOcean's JSON error body. */
export function doError(id: string, message: string, requestId: string): string {
  return JSON.stringify({ id, message, request_id: requestId });
}

const STATUS_IDS: Record<number, [string, string]> = {
  400: ['bad_request', 'The request was malformed.'],
  401: ['unauthorized', 'Unable to authenticate you.'],
  403: ['forbidden', 'You are not authorized to perform this operation'],
  404: ['not_found', 'The resource you requested could not be found.'],
  409: ['conflict', 'a garbage collection is already active for this registry'],
  412: ['precondition_failed', 'Precondition failed.'],
  422: ['unprocessable_entity', 'The request could not be processed.'],
  429: ['too_many_requests', 'API Rate limit exceeded.'],
  500: ['server_error', 'Unexpected server-side error'],
  502: ['bad_gateway', 'Bad gateway'],
  503: ['service_unavailable', 'The service is temporarily unavailable.'],
  504: ['gateway_timeout', 'Gateway timeout'],
};

/** DigitalOcean's error id and default message for a status. */
export function idFor(status: number): [string, string] {
  return STATUS_IDS[status] ?? (status >= 500 ? ['server_error', 'Unexpected server-side error'] : ['error', 'error']);
}

/** Answers with a JSON body (unless the client is gone) and records the status. */
export function send(res: http.ServerResponse, rec: RequestRecord, status: number, body: string, headers: Record<string, string> = {}): void {
  rec.status = status;
  if (res.destroyed) return;
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(buf.length), ...headers });
  res.end(buf);
}

/** A 204 answer: no body, no content type; records the status. */
export function noContent(res: http.ServerResponse, rec: RequestRecord, headers: Record<string, string> = {}): void {
  rec.status = 204;
  if (res.destroyed) return;
  res.writeHead(204, headers);
  res.end();
}

export function readBody(req: http.IncomingMessage, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function bearer(req: http.IncomingMessage): string | undefined {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

export function basic(req: http.IncomingMessage): { user: string; pass: string } | undefined {
  const h = req.headers.authorization ?? '';
  const m = /^Basic\s+(\S+)\s*$/i.exec(h);
  if (!m) return undefined;
  const dec = Buffer.from(m[1], 'base64').toString('utf8');
  const i = dec.indexOf(':');
  if (i < 0) return undefined;
  return { user: dec.slice(0, i), pass: dec.slice(i + 1) };
}

/** The emulator's timers: every delay ends early (unresolved) when the emulator stops. */
export class Timers {
  stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

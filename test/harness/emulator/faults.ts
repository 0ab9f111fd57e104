// Fault injection: a queue of faults per endpoint, each consumed by the next requests to it. `Fault`
// is a failure of transport or capacity (5xx, 429, slow, malformed, drop: the kinds the reliability
// suite walks); `AnswerFault` an answer of the wrong shape or pace (a DigitalOcean status error, a
// raw page, a body that trickles forever).
import * as crypto from 'crypto';
import * as http from 'http';
import { Timers, doError, idFor, send } from './http';
import type { EndpointKey, RequestRecord } from './types';

export interface Fault {
  kind: '5xx' | '429' | 'slow' | 'malformed' | 'drop';
  times?: number /* default 1; Infinity ok */;
  status?: number /* 5xx: default 503 */;
  delayMs?: number /* slow */;
  retryAfterSeconds?: number /* 429 */;
}
/** Answers of the wrong shape or pace (kept apart from Fault, whose kinds the faults suite walks). */
export interface AnswerFault {
  /**
   * 'status': DigitalOcean's JSON error with `status` and `message` (e.g. 412/422 on start);
   * 'raw': any status, content type and body (an HTML 404 page from a proxy, JSON of another shape);
   * 'trickle': 200 application/json headers, then one byte every delayMs (default 1000), never ending.
   */
  kind: 'status' | 'raw' | 'trickle';
  times?: number /* default 1; Infinity ok */;
  status?: number /* status: default 422; raw: default 404 */;
  delayMs?: number /* trickle */;
  message?: string /* status: DigitalOcean's message */;
  contentType?: string /* raw: default 'text/html; charset=utf-8' */;
  body?: string /* raw: default an HTML error page */;
}
export type AnyFault = Fault | AnswerFault;
interface FaultInternal {
  fault: AnyFault;
  left: number;
}

export class FaultInjector {
  private readonly faults = new Map<EndpointKey, FaultInternal[]>();

  constructor(private readonly timers: Timers) {}

  add(endpoint: EndpointKey, fault: AnyFault): void {
    const left = fault.times ?? 1;
    if (left <= 0) return;
    const q = this.faults.get(endpoint) ?? [];
    q.push({ fault: { ...fault }, left });
    this.faults.set(endpoint, q);
  }

  clear(): void {
    this.faults.clear();
  }

  private take(endpoint: EndpointKey): AnyFault | undefined {
    const q = this.faults.get(endpoint);
    if (!q || q.length === 0) return undefined;
    const head = q[0];
    head.left -= 1;
    if (head.left <= 0) q.shift();
    return head.fault;
  }

  /** Applies the endpoint's next fault, if any; returns true when the request was fully answered (or dropped). */
  async apply(endpoint: EndpointKey, rec: RequestRecord, res: http.ServerResponse, extra: Record<string, string>): Promise<boolean> {
    const f = this.take(endpoint);
    if (!f) return false;
    const rid = crypto.randomUUID();
    switch (f.kind) {
      case 'drop':
        rec.status = 0;
        res.socket?.destroy();
        return true;
      case 'slow':
        await this.timers.delay(f.delayMs ?? 5000);
        return this.timers.stopped || res.destroyed;
      case 'malformed':
        send(res, rec, 200, '{"garbage_collection": {', { ...extra, 'x-request-id': rid });
        return true;
      case '429': {
        const ra = String(f.retryAfterSeconds ?? 1);
        send(res, rec, 429, doError('too_many_requests', 'API Rate limit exceeded.', rid), { ...extra, 'x-request-id': rid, 'retry-after': ra });
        return true;
      }
      case '5xx': {
        const status = f.status ?? 503;
        const [id, msg] = idFor(status);
        send(res, rec, status, doError(id, msg, rid), { ...extra, 'x-request-id': rid });
        return true;
      }
      case 'status': {
        const status = f.status ?? 422;
        const [id, msg] = idFor(status);
        send(res, rec, status, doError(id, f.message ?? msg, rid), { ...extra, 'x-request-id': rid });
        return true;
      }
      case 'raw': {
        const body = f.body ?? '<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><hr><center>nginx</center></body></html>';
        send(res, rec, f.status ?? 404, body, { ...extra, 'content-type': f.contentType ?? 'text/html; charset=utf-8' });
        return true;
      }
      case 'trickle':
        await this.trickle(res, rec, f.delayMs ?? 1000, extra);
        return true;
    }
    return false;
  }

  /** A 200 JSON answer whose body never ends: one byte per interval until the client gives up. */
  private async trickle(res: http.ServerResponse, rec: RequestRecord, intervalMs: number, extra: Record<string, string>): Promise<void> {
    rec.status = 200;
    if (res.destroyed) return;
    res.writeHead(200, { ...extra, 'content-type': 'application/json; charset=utf-8' });
    res.flushHeaders();
    const head = '{"garbage_collection": ';
    for (let i = 0; !this.timers.stopped && !res.destroyed && !res.writableEnded; i++) {
      res.write(i < head.length ? head[i] : ' ');
      await this.timers.delay(intervalMs);
    }
  }
}

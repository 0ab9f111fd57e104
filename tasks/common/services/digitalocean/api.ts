// One DigitalOcean API call: the request, its retries within the client's budget, and what the
// answer means. Only DigitalOcean's own JSON error body is read from an error; a 2xx body must be a
// JSON object of the shape the caller checks, or the attempt is retried like any other failure.
import { UserError, errorMessage } from '../../platform/errors';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  HttpResponse,
  HttpStatusError,
  ShapeError,
  UnexpectedAnswerError,
  classifyHttpFailure,
  shapeAwareClassifier,
  shapeGiveUp,
  isTransientStatus,
  jsonBody,
  jsonErrorObject,
  request as httpRequest,
  retryAfterMs,
} from '../../platform/http';
import { quote } from '../../platform/output';
import { FailureClass, RetryBudget, withRetry } from '../../platform/retry';
import { DoConnection } from './connection';
import { RatePacer } from './pacing';

/**
 * An answer from the DigitalOcean API that is an error. `wellFormed` is true only for DigitalOcean's
 * own error body (JSON with string `id` and `message`); id and doMessage come from that body only.
 */
export class DoApiError extends HttpStatusError {
  constructor(
    message: string,
    status: number,
    readonly id: string,
    readonly doMessage: string,
    readonly requestId: string,
    readonly wellFormed: boolean,
    waitMs?: number,
  ) {
    super(message, status, waitMs);
    this.name = 'DoApiError';
  }

  get waitMs(): number | undefined {
    return this.retryAfterMs;
  }
}

/** Thrown by startGc when DigitalOcean refuses because a GC is already active (409 Conflict only). */
export class GcAlreadyActiveError extends DoApiError {}

/** DigitalOcean's messages are cut to this many characters wherever they are quoted. */
const DO_MESSAGE_MAX = 200;
/** links.pages.next is followed at most this many times: a looping or endless list cannot hold a task. */
export const MAX_LIST_PAGES = 20;

export type Scope = 'registry:read' | 'registry:update' | 'registry:delete';

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  params?: Record<string, string | number | boolean>;
  body?: unknown;
  scope: Scope;
  /** Statuses handed back to the caller instead of becoming errors (e.g. 404 = none). */
  accept?: number[];
  /** Checks a 2xx body inside the attempt, so an answer of the wrong shape is retried like any other. */
  check?: (data: any) => void;
  /** A 2xx answer carries no body to read (204 on a delete): its status is the answer, data undefined. */
  noContent?: boolean;
}

export interface DoAnswer {
  status: number;
  /** A 2xx answer's JSON object (an accepted error status: undefined). */
  data: any;
  requestId: string;
  /** For an accepted error status: DigitalOcean's own error body (never anything else). */
  error?: DoApiError;
}

export interface DigitalOceanClientOptions {
  requestTimeoutMs?: number;
  log?: (line: string) => void;
  /** Retry budget for one API call (5xx, resets, timeouts, malformed JSON, 429). */
  maxAttempts?: number;
  initialBackoffSeconds?: number;
  maxBackoffSeconds?: number;
  /** The whole-call deadline, including 429 waits. */
  callTimeoutSeconds?: number;
  /** The token-wide request rate this client paces itself to when others share the token (per minute). */
  targetRequestsPerMinute?: number;
}

/**
 * The transport of the DigitalOcean client: every request has a timeout and goes through withRetry;
 * 401/403 fail at once naming the scope the token lacks. The token is only ever sent in the
 * Authorization header and never logged.
 */
export class DoApi {
  private readonly apiUrl: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly log: (line: string) => void;
  private readonly budget: RetryBudget;
  /** HTTP requests actually sent (retries included). */
  requestCount = 0;

  constructor(
    conn: DoConnection,
    options: DigitalOceanClientOptions,
    private readonly pacer: RatePacer,
  ) {
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.apiUrl = conn.apiUrl.replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
    this.headers = { Authorization: `Bearer ${conn.token}`, 'Content-Type': 'application/json', Accept: 'application/json' };
    this.log = options.log ?? (() => undefined);
    this.budget = {
      maxAttempts: options.maxAttempts ?? 6,
      attemptTimeoutSeconds: Math.ceil(timeoutMs / 1000) + 1,
      initialBackoffSeconds: options.initialBackoffSeconds ?? 1,
      maxBackoffSeconds: options.maxBackoffSeconds ?? 30,
      totalTimeoutSeconds: options.callTimeoutSeconds ?? 300,
    };
  }

  private describe(spec: RequestSpec): string {
    return `${spec.method} ${spec.path}`;
  }

  /**
   * The error an answer stands for. Only DigitalOcean's JSON error body is read, and only its `id`,
   * `message` and `request_id` fields (one line, cut): a body that is not that shape may carry
   * anything (a proxy page echoing headers), so it is described by status, content type and length.
   */
  private errorFrom(spec: RequestSpec, res: HttpResponse): DoApiError {
    // Anything else is described below as a body that is not DigitalOcean's.
    const parsed = jsonErrorObject(res);
    const wellFormed = typeof parsed?.id === 'string' && typeof parsed?.message === 'string';
    const id = wellFormed ? quote(String(parsed!.id), 60) : '';
    const doMessage = wellFormed ? quote(String(parsed!.message), DO_MESSAGE_MAX) : '';
    const rawRid = (wellFormed && typeof parsed!.request_id === 'string' ? (parsed!.request_id as string) : '') || res.headers['x-request-id'] || '';
    const requestId = quote(rawRid, 64);
    const detail = wellFormed
      ? ` (${[id, doMessage].filter(Boolean).join(': ')})`
      : ` with a body that is not DigitalOcean's error (${res.mediaType || 'no content type'}, ${res.body.length}${res.truncated ? '+' : ''} bytes)`;
    const msg = `DigitalOcean API ${this.describe(spec)} answered ${res.status}${detail}${requestId ? ` [request id ${requestId}]` : ''}`;
    return new DoApiError(msg, res.status, id, doMessage, requestId, wellFormed, res.status === 429 ? this.retryWaitMs(res) : undefined);
  }

  /** Retry-After when sent; else until ratelimit-reset; else 5 to 10 s. Jittered. */
  private retryWaitMs(res: HttpResponse): number {
    const told = retryAfterMs(res.headers);
    if (told !== undefined) return told + Math.floor(Math.random() * 250);
    const reset = Number(res.headers['ratelimit-reset'] ?? '');
    if (Number.isFinite(reset) && reset > 0) return Math.min(3600_000, Math.max(1000, reset * 1000 - Date.now())) + Math.floor(Math.random() * 1000);
    return 5000 + Math.floor(Math.random() * 5000);
  }

  /** A 2xx answer's body: a JSON object, or UnexpectedAnswerError (transient: retried, then failed). */
  private okBody(spec: RequestSpec, res: HttpResponse): Record<string, unknown> {
    const what = `DigitalOcean API ${this.describe(spec)}`;
    if (res.mediaType !== 'application/json') {
      throw new UnexpectedAnswerError(
        `${what} answered ${res.status} with a body that is not JSON (${res.mediaType || 'no content type'}, ${res.body.length} bytes)`,
      );
    }
    let v: unknown;
    try {
      v = jsonBody(res, what);
    } catch {
      throw new UnexpectedAnswerError(`${what} answered ${res.status} with malformed JSON (${res.body.length} bytes)`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UnexpectedAnswerError(`${what} answered ${res.status} with JSON that is not an object`);
    return v as Record<string, unknown>;
  }

  private async once(spec: RequestSpec, signal: AbortSignal, url: string): Promise<DoAnswer> {
    this.requestCount++;
    const query = new URLSearchParams(Object.entries(spec.params ?? {}).map(([k, v]): [string, string] => [k, String(v)])).toString();
    const res = await httpRequest({
      method: spec.method,
      url: `${this.apiUrl}${url}${query ? `?${query}` : ''}`,
      headers: this.headers,
      body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
      kind: 'apiJson',
      signal,
      timeoutMs: this.timeoutMs,
    });
    this.pacer.noteHeaders(res);
    if (res.status >= 200 && res.status < 300) {
      const data = spec.noContent ? undefined : this.okBody(spec, res);
      spec.check?.(data);
      this.pacer.noteSuccess();
      return { status: res.status, data, requestId: quote(res.headers['x-request-id'] ?? '', 64) };
    }
    const err = this.errorFrom(spec, res);
    if (spec.accept?.includes(res.status)) {
      // An accepted status (404 = none, 412 = several registries) means that only in DigitalOcean's
      // own error body: an error page from a proxy or router says nothing about the registry.
      if (!err.wellFormed) throw new UnexpectedAnswerError(err.message);
      return { status: res.status, data: undefined, requestId: err.requestId, error: err };
    }
    if (res.status === 401) {
      throw new UserError(`${err.message}: the DigitalOcean token was refused; check that it is valid and has the ${spec.scope} scope.`);
    }
    if (res.status === 403) {
      throw new UserError(`${err.message}: the DigitalOcean token lacks the ${spec.scope} scope.`);
    }
    if (res.status === 429) {
      this.pacer.noteThrottled(err.waitMs ?? 0);
    }
    throw err;
  }

  /** What DigitalOcean's protocol adds to the one classifier: its 429 is named as a rate limit. */
  private classify = (err: unknown): FailureClass => {
    if (err instanceof DoApiError && err.status === 429) return { kind: 'transient', reason: 'rate-limited (429)', waitMs: err.waitMs };
    return classifyHttpFailure(err);
  };

  async request(spec: RequestSpec, signal?: AbortSignal): Promise<DoAnswer> {
    const url = spec.path;
    const { value } = await withRetry((_attempt, attemptSignal) => this.once(spec, attemptSignal, url), {
      budget: this.budget,
      // A shape refusal repeated identically is the server's steady answer: tried once more only.
      classify: shapeAwareClassifier(this.classify),
      signal,
      onFailure: (r) => {
        if (r.nextWaitMs !== undefined) {
          this.log(
            `DigitalOcean API ${this.describe(spec)}: ${r.failure.reason} (${quote(errorMessage(r.error), 300)}); attempt ${r.attempt + 1} of ${r.maxAttempts} in ${(r.nextWaitMs / 1000).toFixed(1)}s.`,
          );
        }
      },
      // DigitalOcean's own refusal (a 4xx) reads as it is; running out of attempts names the call.
      giveUp: (failed) => {
        const last = failed.lastError;
        if (last instanceof DoApiError && !isTransientStatus(last.status)) return last;
        // A refused shape reads as itself: the field and why, in one line.
        if (last instanceof ShapeError) return shapeGiveUp(last, failed.failure, failed.attempts);
        return new Error(`DigitalOcean API ${this.describe(spec)} failed: ${failed.message}`);
      },
    });
    return value;
  }
}

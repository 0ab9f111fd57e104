import { CancelledError, UserError, errorMessage } from './errors';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  HttpResponse,
  HttpStatusError,
  UnexpectedAnswerError,
  classifyHttpFailure,
  isTransientStatus,
  jsonBody,
  jsonErrorObject,
  request as httpRequest,
  retryAfterMs,
} from './http';
import { readEndpointAuthParam, readEndpointUrl, readString, requireHttpUrl } from './inputs';
import { GRAMMARS, RFC3339, STATUS_WORD, quote } from './output';
import { FailureClass, RetryBudget, withRetry } from './retry';

/** DigitalOcean's own pattern for registry names. */
export const REGISTRY_NAME_PATTERN = /^[a-z0-9-]{1,63}$/;
export const DEFAULT_DO_API_URL = 'https://api.digitalocean.com';

export interface DoConnection {
  token: string;
  apiUrl: string;
  source: 'connection' | 'env';
}

/** Fails with one line naming the input when a registry name is not a DigitalOcean name. */
export function validateRegistryName(inputName: string, value: string): string {
  if (value !== '' && !REGISTRY_NAME_PATTERN.test(value)) {
    const shown = value.length > 80 ? value.slice(0, 77) + '...' : value;
    throw new UserError(
      `Input '${inputName}' must be a DigitalOcean registry name (lower-case letters, digits and '-', 1 to 63 characters), got '${shown.replace(/\r?\n/g, '\\n')}'.`,
    );
  }
  return value;
}

/**
 * Reads the 'digitalOceanConnection' input (endpoint id → ENDPOINT_URL_<id>,
 * apitoken via readEndpointAuthParam), else DIGITALOCEAN_ACCESS_TOKEN with
 * https://api.digitalocean.com (or DIGITALOCEAN_API_URL if set). Returns
 * undefined when neither (throws UserError when required). Never logs the token.
 */
export function readDoConnection(inputName: string, required: boolean): DoConnection | undefined {
  const endpointId = readString(inputName);
  if (endpointId !== '') {
    const token = readEndpointAuthParam(endpointId, 'apitoken').trim();
    if (token === '') {
      throw new UserError(`Input '${inputName}': the service connection '${endpointId}' has no API token (apitoken).`);
    }
    const url = readEndpointUrl(endpointId).trim() || DEFAULT_DO_API_URL;
    requireHttpUrl(`${inputName} (server URL)`, url);
    return { token, apiUrl: url.replace(/\/+$/, ''), source: 'connection' };
  }
  const envToken = (process.env['DIGITALOCEAN_ACCESS_TOKEN'] ?? '').trim();
  if (envToken !== '') {
    const url = (process.env['DIGITALOCEAN_API_URL'] ?? '').trim() || DEFAULT_DO_API_URL;
    requireHttpUrl('DIGITALOCEAN_API_URL', url);
    return { token: envToken, apiUrl: url.replace(/\/+$/, ''), source: 'env' };
  }
  if (required) {
    throw new UserError(
      `Input '${inputName}' is required: choose a DigitalOcean API service connection, or set the DIGITALOCEAN_ACCESS_TOKEN environment variable.`,
    );
  }
  return undefined;
}

export interface GarbageCollection {
  uuid: string;
  registry_name: string;
  status: string;
  type?: string;
  created_at: string;
  updated_at: string;
  blobs_deleted: number;
  freed_bytes: number;
}

export const TERMINAL_GC_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;

/** succeeded|failed|cancelled only; every other status (unknown ones too) is active. */
export function isTerminalGcStatus(status: string): boolean {
  return (TERMINAL_GC_STATUSES as readonly string[]).includes((status ?? '').trim().toLowerCase());
}

/** The pickList values of DoRegistryGarbageCollection@1 → DigitalOcean's type strings (with spaces). */
export const GC_TYPES = {
  'untagged-manifests-and-unreferenced-blobs': 'untagged manifests and unreferenced blobs',
  'unreferenced-blobs-only': 'unreferenced blobs only',
  'untagged-manifests-only': 'untagged manifests only',
} as const;
export type GcTypeInput = keyof typeof GC_TYPES;

/** DigitalOcean's type string back to the pickList spelling (unknown strings unchanged). */
export function gcTypeInputName(doType: string | undefined): string {
  if (!doType) return '';
  const hit = (Object.keys(GC_TYPES) as GcTypeInput[]).find((k) => GC_TYPES[k] === doType.trim().toLowerCase());
  return hit ?? doType;
}

/** RFC 3339 with or without fractional seconds; NaN when absent or unparsable. */
export function parseDoTime(value: string | undefined): number {
  if (!value) return NaN;
  return Date.parse(value);
}

/** From the GC's own timestamps (created_at → updated_at); undefined when they do not parse. */
export function gcOwnDurationSeconds(gc: GarbageCollection): number | undefined {
  const a = parseDoTime(gc.created_at);
  const b = parseDoTime(gc.updated_at);
  if (Number.isNaN(a) || Number.isNaN(b) || b < a) return undefined;
  return Math.round((b - a) / 1000);
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

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

type Scope = 'registry:read' | 'registry:update';

interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  params?: Record<string, string | number | boolean>;
  body?: unknown;
  scope: Scope;
  /** Statuses handed back to the caller instead of becoming errors (e.g. 404 = none). */
  accept?: number[];
  /** Checks a 2xx body inside the attempt, so an answer of the wrong shape is retried like any other. */
  check?: (data: any) => void;
}

interface DoAnswer {
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

type PathMode = 'new' | 'legacy';

interface RateSample {
  at: number;
  remaining: number;
}

/**
 * The DigitalOcean registry API: registries, GC start/get/list/cancel, docker
 * credentials. New /v2/registries/{name} paths; the old /v2/registry/{name}
 * ones only for a registry confirmed to exist whose new paths answer 404.
 * Every request has a timeout and goes through withRetry; 401/403 fail at
 * once naming the scope the token lacks. The token is only ever sent in the
 * Authorization header and never logged.
 */
export class DigitalOceanClient {
  private readonly apiUrl: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly log: (line: string) => void;
  private readonly budget: RetryBudget;
  private readonly targetRpm: number;
  private readonly modes = new Map<string, PathMode>();
  private count = 0;
  private samples: RateSample[] = [];
  private limit?: number;
  private remaining?: number;
  private resetAt?: number;
  private throttledUntil = 0;
  private slowFactor = 1;
  private lastPollDelayMs?: number;
  /** Why the last pollDelayMs was well above the interval asked for ('' when it was not). */
  pacing = '';

  constructor(conn: DoConnection, options: DigitalOceanClientOptions = {}) {
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.apiUrl = conn.apiUrl.replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
    this.headers = { Authorization: `Bearer ${conn.token}`, 'Content-Type': 'application/json', Accept: 'application/json' };
    this.log = options.log ?? (() => undefined);
    const maxAttempts = options.maxAttempts ?? 6;
    const attemptTimeoutSeconds = Math.ceil(timeoutMs / 1000) + 1;
    this.budget = {
      maxAttempts,
      attemptTimeoutSeconds,
      initialBackoffSeconds: options.initialBackoffSeconds ?? 1,
      maxBackoffSeconds: options.maxBackoffSeconds ?? 30,
      totalTimeoutSeconds: options.callTimeoutSeconds ?? 300,
    };
    // 60 % of DigitalOcean's 250/min burst limit: room for the start-up burst of many jobs,
    // for the controller's lag, and for other clients of the same token.
    this.targetRpm = options.targetRequestsPerMinute ?? 150;
  }

  /** HTTP requests actually sent (retries included). */
  get requestCount(): number {
    return this.count;
  }

  /** The last rate-limit figures DigitalOcean sent. */
  get rateLimit(): { limit?: number; remaining?: number; resetAt?: number } {
    return { limit: this.limit, remaining: this.remaining, resetAt: this.resetAt };
  }

  /**
   * How long to wait before the next poll, given the wanted interval: never
   * shorter. Longer when the token-wide request rate exceeds the target: that
   * rate is read from how fast ratelimit-remaining falls between this
   * client's own requests, so it counts every job sharing the token, and the
   * delay scales by rate/target each poll (a multiplicative controller whose
   * fixed point is the target rate). Also longer when the hourly budget runs
   * low (spread what is left until ratelimit-reset) and after a 429.
   */
  pollDelayMs(baseMs: number): number {
    const now = Date.now();
    let delay = baseMs;
    let reason = '';
    const prev = this.lastPollDelayMs ?? baseMs;
    const rate = this.observedTokenRate(now, prev);
    if (rate !== undefined && rate > 0) delay = Math.max(baseMs, (prev * rate) / this.targetRpm);
    else if (rate === undefined) delay = Math.max(baseMs, prev);
    if (delay > baseMs && rate !== undefined)
      reason = `the token is used at about ${Math.round(rate)} requests/min by every job sharing it (pacing to ${this.targetRpm}/min)`;
    if (this.slowFactor > 1.05) {
      delay *= this.slowFactor;
      reason = 'DigitalOcean answered 429 (rate limited) recently';
    }
    if (this.limit !== undefined && this.remaining !== undefined && this.resetAt !== undefined) {
      const low = Math.max(20, this.limit * 0.1);
      if (this.remaining < low) {
        const untilReset = Math.max(0, this.resetAt - now);
        const spread = this.remaining <= 1 ? untilReset : untilReset / (this.remaining - 1);
        if (spread > delay) {
          delay = spread;
          reason = `only ${this.remaining} of the token's ${this.limit} requests/hour are left`;
        }
      }
    }
    this.pacing = delay > baseMs * 1.5 ? reason : '';
    delay = Math.min(delay, Math.max(baseMs, 5 * 60_000));
    this.lastPollDelayMs = delay;
    if (this.throttledUntil > now) delay = Math.max(delay, this.throttledUntil - now);
    // A little jitter (≤ 5 %, ≤ 0.5 s) so many jobs on one token do not poll in step.
    return Math.round(delay + Math.random() * Math.min(500, baseMs * 0.05));
  }

  /**
   * Requests per minute across the whole token: the fall of ratelimit-remaining
   * from the oldest sample inside max(60 s, 1.5 × the last poll delay) to the
   * newest, over at least 5 s. undefined when there is no such pair.
   */
  private observedTokenRate(now: number, lastDelayMs: number): number | undefined {
    const window = Math.max(60_000, 1.5 * lastDelayMs);
    const recent = this.samples.filter((s) => now - s.at <= window);
    if (recent.length < 2) return undefined;
    const first = recent[0];
    const last = recent[recent.length - 1];
    const dt = last.at - first.at;
    if (dt < 5_000) return undefined;
    const used = Math.max(0, first.remaining - last.remaining);
    return (used / dt) * 60_000;
  }

  private noteHeaders(res: HttpResponse): void {
    const h = res.headers as Record<string, unknown>;
    const num = (k: string) => {
      const v = Number(String(h[k] ?? ''));
      return Number.isFinite(v) && String(h[k] ?? '') !== '' ? v : undefined;
    };
    const limit = num('ratelimit-limit');
    const remaining = num('ratelimit-remaining');
    const reset = num('ratelimit-reset');
    if (limit !== undefined) this.limit = limit;
    if (reset !== undefined) this.resetAt = reset * 1000;
    if (remaining !== undefined) {
      this.remaining = remaining;
      const now = Date.now();
      this.samples.push({ at: now, remaining });
      this.samples = this.samples.filter((s) => now - s.at <= 10 * 60_000).slice(-500);
    }
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
    this.count++;
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
    this.noteHeaders(res);
    if (res.status >= 200 && res.status < 300) {
      const data = this.okBody(spec, res);
      spec.check?.(data);
      this.slowFactor = Math.max(1, this.slowFactor * 0.95);
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
      this.throttledUntil = Math.max(this.throttledUntil, Date.now() + (err.waitMs ?? 0));
      this.slowFactor = Math.min(8, this.slowFactor * 2);
    }
    throw err;
  }

  /** What DigitalOcean's protocol adds to the one classifier: its 429 is named as a rate limit. */
  private classify = (err: unknown): FailureClass => {
    if (err instanceof DoApiError && err.status === 429) return { kind: 'transient', reason: 'rate-limited (429)', waitMs: err.waitMs };
    return classifyHttpFailure(err);
  };

  private async request(spec: RequestSpec, signal?: AbortSignal): Promise<DoAnswer> {
    const url = spec.path;
    const { value } = await withRetry((_attempt, attemptSignal) => this.once(spec, attemptSignal, url), {
      budget: this.budget,
      classify: this.classify,
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
        return new Error(`DigitalOcean API ${this.describe(spec)} failed: ${failed.message}`);
      },
    });
    return value;
  }

  private base(registry: string, mode: PathMode): string {
    const n = encodeURIComponent(registry);
    return mode === 'new' ? `/v2/registries/${n}` : `/v2/registry/${n}`;
  }

  private async ensure(registry: string, signal?: AbortSignal): Promise<PathMode> {
    const known = this.modes.get(registry);
    if (known) return known;
    await this.resolveRegistry(registry, signal);
    return this.modes.get(registry)!;
  }

  /** GET /v2/registry: the account's single registry's name (checked), or the 404/412 DigitalOcean sent. */
  private async singleRegistry(signal?: AbortSignal): Promise<{ status: number; name?: string }> {
    const check = (d: any) => void registryNameOf(d, 'GET /v2/registry');
    const a = await this.request({ method: 'GET', path: '/v2/registry', scope: 'registry:read', accept: [404, 412], check }, signal);
    if (a.status === 404 || a.status === 412) return { status: a.status };
    return { status: a.status, name: registryNameOf(a.data, 'GET /v2/registry') };
  }

  /** GET /v2/registries/{name}: true when it answers with that registry, false on DigitalOcean's 404. */
  private async namedRegistryExists(name: string, signal?: AbortSignal): Promise<boolean> {
    const path = `/v2/registries/${encodeURIComponent(name)}`;
    const check = (d: any) => void registryNameOf(d, `GET ${path}`);
    const a = await this.request({ method: 'GET', path, scope: 'registry:read', accept: [404], check }, signal);
    if (a.status === 404) return false;
    if (registryNameOf(a.data, `GET ${path}`) !== name) throw new UnexpectedAnswerError(`DigitalOcean API GET ${path} answered with another registry`);
    return true;
  }

  /**
   * '' → the account's only registry (GET /v2/registry; 412 → "set the `registry` input");
   * a name → confirmed through GET /v2/registries/{name} (or the old single-registry path).
   */
  async resolveRegistry(name: string, signal?: AbortSignal): Promise<string> {
    if (name === '') {
      const single = await this.singleRegistry(signal);
      if (single.status === 412) {
        const names = await this.listRegistryNames(signal);
        throw new UserError(
          `This DigitalOcean account has several registries${names.length ? ` (${names.join(', ')})` : ''}: set the \`registry\` input to the one to use.`,
        );
      }
      if (!single.name) throw new UserError('This DigitalOcean account has no container registry (GET /v2/registry answered 404).');
      const found = single.name;
      this.modes.set(found, (await this.namedRegistryExists(found, signal)) ? 'new' : 'legacy');
      this.log(`Registry: ${found} (the account's only registry).`);
      return found;
    }
    if (await this.namedRegistryExists(name, signal)) {
      this.modes.set(name, 'new');
      return name;
    }
    // The new path says 404: either no such registry, or an API without /v2/registries.
    const single = await this.singleRegistry(signal);
    if (single.name === name) {
      this.modes.set(name, 'legacy');
      this.log(`Registry ${name}: /v2/registries answered 404, using the older /v2/registry paths.`);
      return name;
    }
    const other = single.name ? ` (this token's registry is '${single.name}')` : '';
    throw new UserError(`DigitalOcean registry '${name}' does not exist for this token${other}; check the \`registry\` input.`);
  }

  /**
   * Confirms the registry and reads its newest GCs in one request where it can
   * (GET /v2/registries/{name}/garbage-collections answers 200 only for a
   * registry that exists); otherwise as resolveRegistry, then listGcs.
   */
  async openRegistry(name: string, historyLimit: number, signal?: AbortSignal): Promise<{ registry: string; history: GarbageCollection[] }> {
    if (name !== '' && !this.modes.has(name)) {
      const perPage = Math.max(1, Math.min(200, historyLimit));
      const path = `/v2/registries/${encodeURIComponent(name)}/garbage-collections`;
      const check = (d: any) => void gcListOf(d, `GET ${path}`);
      const a = await this.request({ method: 'GET', path, params: { per_page: perPage, page: 1 }, scope: 'registry:read', accept: [404], check }, signal);
      if (a.status !== 404) {
        const history = gcListOf(a.data, `GET ${path}`);
        this.modes.set(name, 'new');
        history.sort((x, y) => (parseDoTime(y.created_at) || 0) - (parseDoTime(x.created_at) || 0));
        return { registry: name, history: history.slice(0, historyLimit) };
      }
    }
    const registry = await this.resolveRegistry(name, signal);
    return { registry, history: await this.listGcs(registry, historyLimit, signal) };
  }

  /** The account's registry names for a message; only names in DigitalOcean's grammar are shown. */
  private async listRegistryNames(signal?: AbortSignal): Promise<string[]> {
    try {
      const r = await this.request({ method: 'GET', path: '/v2/registries', scope: 'registry:read', accept: [404] }, signal);
      const list: unknown[] = Array.isArray(r.data?.registries) ? r.data.registries : [];
      return list.map((x) => (x as { name?: unknown })?.name).filter((n): n is string => typeof n === 'string' && REGISTRY_NAME_PATTERN.test(n));
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      return [];
    }
  }

  /**
   * A call on a confirmed registry: new path first; on DigitalOcean's 404 from the new path, the
   * old path once (and from then on for this registry).
   */
  private async onRegistry(registry: string, make: (base: string) => RequestSpec, signal?: AbortSignal): Promise<DoAnswer> {
    const mode = await this.ensure(registry, signal);
    const spec = make(this.base(registry, mode));
    const answer = await this.request({ ...spec, accept: [...(spec.accept ?? []), 404] }, signal);
    if (answer.status === 404 && mode === 'new' && !spec.accept?.includes(404)) {
      const legacySpec = make(this.base(registry, 'legacy'));
      const viaOld = await this.request({ ...legacySpec, accept: [...(legacySpec.accept ?? []), 404] }, signal);
      if (viaOld.status !== 404) {
        this.modes.set(registry, 'legacy');
        this.log(`Registry ${registry}: ${spec.path} answered 404, using the older /v2/registry paths.`);
        return viaOld;
      }
    }
    if (answer.status === 404 && !spec.accept?.includes(404)) {
      throw new UserError(`DigitalOcean API ${spec.method} ${spec.path} answered 404 (${answer.error?.doMessage || 'not found'}) for registry '${registry}'.`);
    }
    return answer;
  }

  /**
   * The active GC, or undefined. "None active" only from DigitalOcean's own 404 error body on a
   * registry confirmed to exist; any other 404 is an unexpected answer (retried, then failed).
   */
  async getActiveGc(registry: string, signal?: AbortSignal): Promise<GarbageCollection | undefined> {
    const check = (d: any) => void normalizeGc(d.garbage_collection, 'GET active garbage collection');
    const a = await this.onRegistry(
      registry,
      (b) => ({ method: 'GET', path: `${b}/garbage-collection`, scope: 'registry:read', accept: [404], check }),
      signal,
    );
    if (a.status === 404) return undefined;
    return normalizeGc(a.data.garbage_collection, 'GET active garbage collection');
  }

  /**
   * Past and active GCs, newest first, following links.pages.next until `limit`. Stops on a page
   * already read (a looping next link) and after MAX_LIST_PAGES pages.
   */
  async listGcs(registry: string, limit = 10, signal?: AbortSignal): Promise<GarbageCollection[]> {
    const out: GarbageCollection[] = [];
    const perPage = Math.max(1, Math.min(200, limit));
    const check = (d: any) => void gcListOf(d, 'GET garbage collections');
    let page = await this.onRegistry(
      registry,
      (b) => ({ method: 'GET', path: `${b}/garbage-collections`, params: { per_page: perPage, page: 1 }, scope: 'registry:read', check }),
      signal,
    );
    const path = this.base(registry, this.modes.get(registry) ?? 'new') + '/garbage-collections';
    const seen = new Set<number>([1]);
    for (let pages = 1; ; pages++) {
      const items = gcListOf(page.data, `GET ${path}`);
      out.push(...items);
      const next = nextPage(page.data?.links?.pages?.next);
      if (out.length >= limit || items.length === 0 || next === undefined || seen.has(next) || pages >= MAX_LIST_PAGES) break;
      seen.add(next);
      page = await this.request({ method: 'GET', path, params: { per_page: perPage, page: next }, scope: 'registry:read', check }, signal);
    }
    out.sort((x, y) => (parseDoTime(y.created_at) || 0) - (parseDoTime(x.created_at) || 0));
    return out.slice(0, limit);
  }

  /**
   * Starts a GC. GcAlreadyActiveError only on 409 (DigitalOcean's "already active"); a 412 or 422
   * is a refusal that another try will not change: a UserError with DigitalOcean's message.
   */
  async startGc(registry: string, type: string, signal?: AbortSignal): Promise<GarbageCollection> {
    try {
      const a = await this.onRegistry(
        registry,
        (b) => ({
          method: 'POST',
          path: `${b}/garbage-collection`,
          body: { type },
          scope: 'registry:update',
          check: (d) => void normalizeGc(d.garbage_collection, 'start garbage collection'),
        }),
        signal,
      );
      return normalizeGc(a.data.garbage_collection, 'start garbage collection');
    } catch (err) {
      if (err instanceof DoApiError && err.status === 409) {
        throw new GcAlreadyActiveError(err.message, err.status, err.id, err.doMessage, err.requestId, err.wellFormed);
      }
      if (err instanceof DoApiError && (err.status === 412 || err.status === 422)) {
        throw new UserError(`DigitalOcean refused to start a garbage collection on ${registry}: ${err.message}.`);
      }
      throw err;
    }
  }

  async cancelGc(registry: string, uuid: string, signal?: AbortSignal): Promise<GarbageCollection> {
    const a = await this.onRegistry(
      registry,
      (b) => ({
        method: 'PUT',
        path: `${b}/garbage-collection/${encodeURIComponent(uuid)}`,
        body: { cancel: true },
        scope: 'registry:update',
        check: (d) => void normalizeGc(d.garbage_collection, 'cancel garbage collection'),
      }),
      signal,
    );
    return normalizeGc(a.data.garbage_collection, 'cancel garbage collection');
  }

  /** A docker config.json for the registry host; never logged. */
  async dockerCredentials(
    registry: string,
    options: { readWrite: boolean; expirySeconds: number },
    signal?: AbortSignal,
  ): Promise<{ auths: Record<string, { auth: string }> }> {
    const a = await this.onRegistry(
      registry,
      (b) => ({
        method: 'GET',
        // The old API has one registry per account: its credentials path carries no name.
        path: b.startsWith('/v2/registries/') ? `${b}/docker-credentials` : '/v2/registry/docker-credentials',
        params: { read_write: options.readWrite, expiry_seconds: options.expirySeconds },
        scope: options.readWrite ? 'registry:update' : 'registry:read',
      }),
      signal,
    );
    if (!a.data || typeof a.data.auths !== 'object' || a.data.auths === null) {
      throw new UnexpectedAnswerError('DigitalOcean API docker-credentials answered without an auths object.');
    }
    return a.data as { auths: Record<string, { auth: string }> };
  }
}

/**
 * The page number of a links.pages.next URL (only that is taken from it: the request goes to our
 * own path on the configured API URL, so the token never goes to a host a response named).
 */
function nextPage(next: unknown): number | undefined {
  if (typeof next !== 'string' || next === '') return undefined;
  try {
    const page = new URL(next, 'http://placeholder.invalid').searchParams.get('page') ?? '';
    return /^[1-9]\d{0,5}$/.test(page) ? Number(page) : undefined;
  } catch {
    return undefined;
  }
}

/** The `registry.name` of a registry answer, in DigitalOcean's grammar, or UnexpectedAnswerError. */
function registryNameOf(data: any, what: string): string {
  const name = data?.registry?.name;
  if (typeof name !== 'string' || !REGISTRY_NAME_PATTERN.test(name)) {
    throw new UnexpectedAnswerError(`DigitalOcean API ${what} answered without a registry name in DigitalOcean's grammar`);
  }
  return name;
}

/** The garbage_collections list of a list answer, each entry checked. */
function gcListOf(data: any, what: string): GarbageCollection[] {
  const items = data?.garbage_collections;
  if (!Array.isArray(items)) throw new UnexpectedAnswerError(`DigitalOcean API ${what} answered without a garbage_collections list`);
  return items.map((it: unknown) => normalizeGc(it, what));
}

/**
 * A GC object from DigitalOcean, checked field by field where it enters: nothing out of grammar
 * reaches a log line, a summary or an output. A field that does not fit is an UnexpectedAnswerError
 * naming the field (never its value). An unknown `type` is dropped (it is informational).
 */
export function normalizeGc(raw: unknown, what = 'garbage collection'): GarbageCollection {
  const bad = (field: string) =>
    new UnexpectedAnswerError(`DigitalOcean API ${what} answered a garbage_collection whose '${field}' is missing or out of grammar`);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('garbage_collection');
  const r = raw as Record<string, unknown>;
  const str = (field: string, ok: (v: string) => boolean): string => {
    const v = r[field];
    if (typeof v !== 'string' || !ok(v)) throw bad(field);
    return v;
  };
  const count = (field: string): number => {
    const v = r[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(field);
    return v;
  };
  const time = (v: string) => RFC3339.test(v) && !Number.isNaN(Date.parse(v));
  const type = typeof r.type === 'string' ? r.type.trim().toLowerCase() : undefined;
  return {
    uuid: str('uuid', GRAMMARS.uuid),
    registry_name: str('registry_name', (v) => REGISTRY_NAME_PATTERN.test(v)),
    status: str('status', (v) => STATUS_WORD.test(v)),
    ...(type !== undefined && (Object.values(GC_TYPES) as string[]).includes(type) ? { type } : {}),
    created_at: str('created_at', time),
    updated_at: str('updated_at', time),
    blobs_deleted: count('blobs_deleted'),
    freed_bytes: count('freed_bytes'),
  };
}

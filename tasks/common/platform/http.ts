// The one HTTP client: every byte the tasks fetch (DigitalOcean API, build timeline, registry, download
// mirror) comes through request() below. It owns:
//  - the agent's proxy (CONNECT tunnel for https), CA file and client certificate, read from the
//    agent's variables without task-lib (whose getters print what they read);
//  - two deadlines per request that hold whatever the server does: a total one, and an idle one that
//    fires when no byte arrived for a while (including before the headers). Plain timers, referenced
//    until cleared: a timeout signal held only by AbortSignal.any() can be garbage-collected unfired;
//  - a size cap per kind of answer, chosen far above any real answer;
//  - the redirect policy: a few at most, never from https to http, credentials dropped across hosts;
//  - the one classifier of transient and permanent failures.
import * as http from 'http';
import * as https from 'https';
import * as tls from 'tls';
// The lean axios build both the tests and the bundles run (scripts/build.js says why it is lean).
import axios from '#axios';
import { pipelineVariable } from './agent';
import { CancelledError } from './errors';
import { ProxySettings, readAgentFile, readProxy } from './network';
import { FailureClass } from './retry';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Size caps per kind of answer. A body over its cap is refused (permanent: the same server will send
 * it again), never buffered whole.
 */
export const BODY_LIMITS = {
  /** DigitalOcean API JSON: a 200-item page of GCs is about 60 KiB. */
  apiJson: 4 * MiB,
  /** The build timeline: 1 to 2 KiB per record; a very large run has a few thousand records. */
  timeline: 32 * MiB,
  /** Image manifests and indexes: the distribution spec lets registries refuse manifests over 4 MiB. */
  manifest: 4 * MiB,
  /** A registry token answer: a JWT of a few KiB. */
  token: 1 * MiB,
  /** Azure DevOps OIDC, Entra ID and Key Vault answers: a token or a key of a few KiB. */
  azure: 256 * KiB,
  /** A Sigstore bundle or a detached signature beside a cosign release asset: 3 to 10 KiB. */
  signature: 1 * MiB,
  /** A cosign binary: about 100 to 130 MB. */
  binary: 512 * MiB,
} as const;
export type BodyKind = keyof typeof BODY_LIMITS;
/** Error answers are read up to this much (for their message), then cut. */
export const ERROR_BODY_LIMIT = 64 * KiB;

/** Every request has a total deadline; this is the default when a caller gives none. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** No byte for this long (headers included) ends a request. */
export const DEFAULT_IDLE_TIMEOUT_MS = 15_000;
export const MAX_REDIRECTS = 5;

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** Which size cap applies to a successful answer. */
  kind: BodyKind;
  /** The caller's signal: an attempt deadline or the job's cancellation. */
  signal?: AbortSignal;
  timeoutMs?: number;
  idleTimeoutMs?: number;
  /** Redirects to follow (0: a redirect is handed back as the answer). */
  maxRedirects?: number;
  /** Accept any TLS certificate (allowInsecureRegistry). */
  insecureTls?: boolean;
  /** Receives a successful body chunk by chunk instead of buffering it (downloads). */
  onChunk?: (chunk: Buffer) => void;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names, first value. */
  headers: Record<string, string>;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: string;
  /** Content-Type without parameters, lower case ('' when absent). */
  mediaType: string;
  /** An error body longer than ERROR_BODY_LIMIT was cut. */
  truncated: boolean;
}

export type HttpFailureReason = 'timeout' | 'idle' | 'network' | 'too-large' | 'truncated' | 'redirect' | 'aborted';

/** The request did not produce a whole answer. */
export class HttpFailure extends Error {
  constructor(
    message: string,
    readonly reason: HttpFailureReason,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'HttpFailure';
  }
}

/** An answer with a status the caller cannot use. */
export class HttpStatusError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'HttpStatusError';
  }
}

/** An answer of the wrong shape: unexpected content type, body that does not parse, missing fields. */
export class UnexpectedAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnexpectedAnswerError';
  }
}

/**
 * An answer whose shape is wrong in one named field: `field` and why (its length, its kind, the
 * grammar it misses), never its value, in one line. The same refusal twice in a row is the
 * server's steady answer, not a transient fault: callers retry it once, not until their budget ends.
 */
export class ShapeError extends UnexpectedAnswerError {
  constructor(
    what: string,
    readonly field: string,
    readonly why: string,
  ) {
    super(`${what}: \`${field}\` ${why}`);
    this.name = 'ShapeError';
  }
}

/** Why a string field does not fit (its kind, its length, its grammar), never quoting it; undefined when it fits. */
export function stringFieldProblem(value: unknown, max: number, fits: (v: string) => boolean, grammar: string): string | undefined {
  if (value === undefined || value === null) return 'is missing';
  if (typeof value !== 'string') return `is ${Array.isArray(value) ? 'an array' : `a ${typeof value}`}, not a string`;
  if (value.length === 0) return 'is empty';
  if (value.length > max) return `has ${value.length} characters (at most ${max})`;
  return fits(value) ? undefined : `is not ${grammar}`;
}

/** Worth another try: rate limits, server errors, gateway faults, request timeouts. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * The one classifier. Transient: 408/425/429/5xx, resets and timeouts, truncated or malformed answers
 * (a proxy glitch, a half-written body). Permanent: every other status, refused redirects, bodies over
 * their cap. Callers add what only their service knows before falling back to this.
 */
export function classifyHttpFailure(err: unknown): FailureClass {
  if (err instanceof HttpStatusError) {
    if (isTransientStatus(err.status)) return { kind: 'transient', reason: `http-${err.status}`, waitMs: err.retryAfterMs };
    return { kind: 'permanent', reason: `http-${err.status}` };
  }
  if (err instanceof HttpFailure) return { kind: err.transient ? 'transient' : 'permanent', reason: err.reason };
  if (err instanceof UnexpectedAnswerError) return { kind: 'transient', reason: 'unexpected answer' };
  return { kind: 'permanent', reason: 'error' };
}

/**
 * The classifier for the retries of one call: as `base`, except that a ShapeError identical to
 * the one the attempt before answered is permanent (the server's steady answer: tried once more,
 * not until the budget ends), while a first or a different one is transient.
 */
export function shapeAwareClassifier(base: (err: unknown) => FailureClass = classifyHttpFailure): (err: unknown) => FailureClass {
  let previous: string | undefined;
  return (err) => {
    const before = previous;
    previous = err instanceof ShapeError ? err.message : undefined;
    if (!(err instanceof ShapeError)) return base(err);
    return err.message === before ? { kind: 'permanent', reason: 'the same answer out of shape twice' } : { kind: 'transient', reason: 'answer out of shape' };
  };
}

/** How a refused shape reads once the retries end: the field and why, in one line, and why it was not retried further. */
export function shapeGiveUp(last: ShapeError, failure: FailureClass, attempts: number): UnexpectedAnswerError {
  const tail = failure.kind === 'permanent' ? 'the same answer twice, not retried further' : `after ${attempts} attempt(s)`;
  return new UnexpectedAnswerError(`${last.message} (${tail})`);
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(headers: Record<string, string>, now = Date.now()): number | undefined {
  const ra = (headers['retry-after'] ?? '').trim();
  if (ra === '') return undefined;
  if (/^\d{1,6}$/.test(ra)) return Number(ra) * 1000;
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

// ---------------------------------------------------------------------------------------------
// The agent's network settings

function readTlsFiles(): tls.SecureContextOptions {
  const options: tls.SecureContextOptions = {};
  const ca = readAgentFile('Agent.CAInfo', "the task and cosign trust the system's roots only");
  if (ca) options.ca = [...tls.rootCertificates, ca.toString('utf8')];
  const cert = readAgentFile('Agent.ClientCert', 'no client certificate is presented');
  const key = readAgentFile('Agent.ClientCertKey', 'no client certificate is presented');
  if (cert && key) {
    options.cert = cert;
    options.key = key;
    const passphrase = pipelineVariable('Agent.ClientCertPassword');
    if (passphrase) options.passphrase = passphrase;
  }
  return options;
}

let proxySettings: ProxySettings | undefined | null = null;
let tlsFiles: tls.SecureContextOptions | undefined;

function proxyFor(url: URL): ProxySettings | undefined {
  if (proxySettings === null) proxySettings = readProxy();
  const p = proxySettings;
  if (!p || p.bypass.some((re) => re.test(url.href))) return undefined;
  return p;
}

function proxyAuthorization(p: ProxySettings): Record<string, string> {
  if (!p.username) return {};
  return { 'Proxy-Authorization': 'Basic ' + Buffer.from(`${p.username}:${p.password}`).toString('base64') };
}

/** An https agent that reaches the target through the proxy's CONNECT tunnel. */
class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: ProxySettings,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: any, done?: (err: Error | null, socket: any) => void): undefined {
    if (!done) throw new Error('TunnelAgent needs a callback');
    const p = this.proxy;
    const connect = (p.url.protocol === 'https:' ? https : http).request({
      host: p.url.hostname,
      port: Number(p.url.port) || (p.url.protocol === 'https:' ? 443 : 80),
      method: 'CONNECT',
      path: `${options.host}:${options.port}`,
      headers: { Host: `${options.host}:${options.port}`, ...proxyAuthorization(p) },
      timeout: DEFAULT_IDLE_TIMEOUT_MS,
    });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        done(new HttpFailure(`the proxy answered ${res.statusCode} to CONNECT ${options.host}:${options.port}`, 'network', true), undefined);
        return;
      }
      done(null, tls.connect({ ...options, socket, servername: options.servername || options.host }));
    });
    connect.once('timeout', () => connect.destroy(new HttpFailure('the proxy did not answer CONNECT', 'idle', true)));
    connect.once('error', (err) => done(err, undefined));
    connect.end();
    return undefined;
  }
}

interface Transport {
  httpAgent?: http.Agent;
  httpsAgent?: https.Agent;
  proxy: false | { protocol: string; host: string; port: number; auth?: { username: string; password: string } };
}

function transportFor(url: URL, insecureTls: boolean): Transport {
  tlsFiles ??= readTlsFiles();
  const skipVerify = insecureTls || /^true$/i.test(pipelineVariable('Agent.SkipCertValidation') ?? '');
  const tlsOptions: https.AgentOptions = { ...tlsFiles, rejectUnauthorized: !skipVerify, keepAlive: false };
  const proxy = proxyFor(url);
  if (!proxy) return { proxy: false, httpsAgent: new https.Agent(tlsOptions) };
  if (url.protocol === 'https:') return { proxy: false, httpsAgent: new TunnelAgent(proxy, tlsOptions) };
  return {
    proxy: {
      protocol: proxy.url.protocol.replace(':', ''),
      host: proxy.url.hostname,
      port: Number(proxy.url.port) || (proxy.url.protocol === 'https:' ? 443 : 80),
      ...(proxy.username ? { auth: { username: proxy.username, password: proxy.password } } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One exchange

const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|cookie)$/i;

function lowerHeaders(raw: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === null) continue;
    out[k.toLowerCase()] = String(Array.isArray(v) ? v[0] : v);
  }
  return out;
}

interface Deadlines {
  signal: AbortSignal;
  /** Called on every byte received: the idle deadline starts again. */
  touch(): void;
  /** Why the request was aborted (undefined while it was not). */
  reason(): HttpFailure | undefined;
  clear(): void;
}

/** The total and idle deadlines of one exchange, plus the caller's signal, as one AbortSignal. */
function deadlines(totalMs: number, idleMs: number, callerSignal?: AbortSignal): Deadlines {
  const controller = new AbortController();
  let why: HttpFailure | undefined;
  const abort = (failure: HttpFailure) => {
    if (why) return;
    why = failure;
    controller.abort(failure);
  };
  const total = setTimeout(() => abort(new HttpFailure(`no complete answer within ${Math.round(totalMs / 1000)}s`, 'timeout', true)), totalMs);
  let idle = setTimeout(onIdle, idleMs);
  function onIdle(): void {
    abort(new HttpFailure(`no data for ${Math.round(idleMs / 1000)}s`, 'idle', true));
  }
  const onCaller = () => abort(new HttpFailure('the request was stopped (deadline or cancellation)', 'aborted', true));
  if (callerSignal?.aborted) onCaller();
  else callerSignal?.addEventListener('abort', onCaller, { once: true });
  return {
    signal: controller.signal,
    touch: () => {
      clearTimeout(idle);
      if (!why) idle = setTimeout(onIdle, idleMs);
    },
    reason: () => why,
    clear: () => {
      clearTimeout(total);
      clearTimeout(idle);
      callerSignal?.removeEventListener('abort', onCaller);
    },
  };
}

/** Reads a body stream under the cap and the deadlines; successful bodies over the cap are refused. */
function readBody(
  stream: NodeJS.ReadableStream & { destroy(err?: Error): void },
  limit: number,
  cut: boolean,
  d: Deadlines,
  onChunk?: (c: Buffer) => void,
): Promise<{ body: Buffer; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      d.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const cutShort = (err?: Error) =>
      settle(() => reject(d.reason() ?? new HttpFailure(`the answer was cut short${err ? `: ${err.message}` : ''}`, 'truncated', true)));
    const onAbort = () => {
      cutShort();
      stream.destroy();
    };
    d.signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      if (settled) return;
      d.touch();
      size += chunk.length;
      if (size > limit) {
        if (cut) {
          chunks.push(chunk.subarray(0, chunk.length - (size - limit)));
          settle(() => resolve({ body: Buffer.concat(chunks), truncated: true }));
        } else {
          settle(() => reject(new HttpFailure(`the answer is larger than ${limit} bytes`, 'too-large', false)));
        }
        stream.destroy();
        return;
      }
      if (onChunk) onChunk(chunk);
      else chunks.push(chunk);
    });
    stream.on('end', () => settle(() => resolve({ body: Buffer.concat(chunks), truncated: false })));
    stream.on('error', (err: Error) => cutShort(err));
    stream.on('aborted', () => cutShort());
    stream.on('close', () => cutShort());
  });
}

async function exchange(req: HttpRequest, url: URL, headers: Record<string, string>): Promise<HttpResponse> {
  const totalMs = req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const d = deadlines(totalMs, Math.min(totalMs, req.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS), req.signal);
  try {
    const res = await axios.request({
      method: req.method,
      url: url.href,
      headers: { 'Accept-Encoding': 'identity', ...headers },
      data: req.body,
      responseType: 'stream',
      maxRedirects: 0,
      decompress: false,
      validateStatus: () => true,
      transformResponse: (x: unknown) => x,
      signal: d.signal,
      ...transportFor(url, req.insecureTls === true),
    });
    d.touch();
    const ok = res.status >= 200 && res.status < 300;
    const { body, truncated } = await readBody(res.data, ok ? BODY_LIMITS[req.kind] : ERROR_BODY_LIMIT, !ok, d, ok ? req.onChunk : undefined);
    const resHeaders = lowerHeaders(res.headers as Record<string, unknown>);
    const mediaType = (resHeaders['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    return { status: res.status, headers: resHeaders, body, url: url.href, mediaType, truncated };
  } catch (err) {
    if (err instanceof HttpFailure) throw err;
    const why = d.reason();
    if (why) throw why;
    const code = (err as { code?: string }).code ?? '';
    throw new HttpFailure(`${url.host}: ${(err as Error).message || code || 'request failed'}`, 'network', true);
  } finally {
    d.clear();
  }
}

/**
 * One request under the deadlines, caps and redirect policy. Answers of any status come back (the
 * caller decides what a status means); only a missing or incomplete answer throws.
 */
export async function request(req: HttpRequest): Promise<HttpResponse> {
  if (req.signal?.aborted) throw new CancelledError();
  let url = new URL(req.url);
  let headers = { ...(req.headers ?? {}) };
  let method = req.method;
  const seen = new Set<string>([url.href]);
  const max = Math.min(req.maxRedirects ?? 0, MAX_REDIRECTS);
  for (let hops = 0; ; hops++) {
    const res = await exchange({ ...req, method }, url, headers);
    const location = res.headers['location'];
    if (max === 0 || ![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
    const next = new URL(location, url);
    if (url.protocol === 'https:' && next.protocol !== 'https:') {
      throw new HttpFailure(`${url.host} redirected from https to ${next.protocol.replace(':', '')}; refused`, 'redirect', false);
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:')
      throw new HttpFailure(`${url.host} redirected to a ${next.protocol} URL; refused`, 'redirect', false);
    if (seen.has(next.href)) throw new HttpFailure(`${url.host} redirects in a loop`, 'redirect', false);
    if (hops + 1 > max) throw new HttpFailure(`more than ${max} redirects from ${new URL(req.url).host}`, 'redirect', false);
    seen.add(next.href);
    if (next.host !== url.host) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.test(k)));
    if (res.status === 303) method = 'GET';
    url = next;
  }
}

/**
 * An error answer's JSON object, when it is one: content type application/json, not cut at the error
 * cap, and an object. undefined otherwise (a proxy page, a cut body): then nothing in it is believed.
 */
export function jsonErrorObject(res: HttpResponse): Record<string, unknown> | undefined {
  if (res.mediaType !== 'application/json' || res.truncated) return undefined;
  try {
    const v: unknown = JSON.parse(res.body.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The answer's body as JSON, when it says it is JSON and parses; else UnexpectedAnswerError. */
export function jsonBody(res: HttpResponse, what: string): unknown {
  if (res.mediaType !== 'application/json' && !res.mediaType.endsWith('+json')) {
    throw new UnexpectedAnswerError(`${what} answered ${res.status} with content type '${res.mediaType || 'none'}', not JSON`);
  }
  try {
    return JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new UnexpectedAnswerError(`${what} answered ${res.status} with JSON that does not parse (${res.body.length} bytes)`);
  }
}

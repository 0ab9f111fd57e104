// Test emulator: what cannot be reached from here, served over real sockets on 127.0.0.1.
//
//  - the DigitalOcean registry API (registries, garbage collection, docker credentials),
//  - the registry's Docker V2 token endpoint (/v2/registry/auth), which refuses push-scoped tokens
//    while a GC is active (the incident this project exists for),
//  - a token-auth front for a REAL distribution registry (second listener, optional),
//  - the Azure DevOps build timeline REST endpoint.
//
// Behaviour follows ../shared/reference/digitalocean-registry-api.md. Node built-ins only.

import * as crypto from 'crypto';
import * as http from 'http';
import * as net from 'net';
import { URL } from 'url';

export interface GcStep {
  status: string;
  seconds: number;
} // status shown for that many seconds
export type EndpointKey = 'registry' | 'gc-start' | 'gc-get' | 'gc-list' | 'gc-cancel' | 'credentials' | 'token' | 'timeline' | 'front';
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
type AnyFault = Fault | AnswerFault;
export interface StageSpec {
  name: string;
  state: 'pending' | 'inProgress' | 'completed';
  result?: string;
  startAfterSeconds?: number;
  completeAfterSeconds?: number;
  displayName?: string;
  /** Addition: the stage that holds the current job (its Phase/Job records hang under it).
   *  Default: the first stage whose initial state is 'inProgress' (else none: parentId null). */
  current?: boolean;
}
export interface RequestRecord {
  at: number /*ms epoch*/;
  method: string;
  path: string;
  endpoint: EndpointKey | 'other';
  status: number;
  token?: string /* which API token was used, for per-token counting */;
}
export interface GcRecord {
  uuid: string;
  registry_name: string;
  status: string;
  type: string;
  created_at: string;
  updated_at: string;
  blobs_deleted: number;
  freed_bytes: number;
}
export interface EmulatorOptions {
  token?: string; // accepted DO API token; default 'dop_v1_emulator_token'
  tokenScopes?: string[]; // its scopes; default ['registry:read', 'registry:update']
  extraTokens?: Record<string, string[]>; // more accepted tokens -> scopes
  registries?: string[]; // default ['demo-registry']; >1 makes GET /v2/registry answer 412
  upstreamRegistry?: string; // e.g. 'http://127.0.0.1:5000' (a real distribution registry); when set, a token-auth front is started
  tailSeconds?: number; // push-scope tokens still refused this long after a GC turns terminal; default 0
  gcSteps?: GcStep[]; // lifecycle for GCs started through the API
  gcFinalStatus?: string; // default 'succeeded'
  rateLimitPerMinute?: number; // default 250 (per token, sliding 60 s window; over it: 429 + retry-after)
  rateLimitPerHour?: number; // default 5000
  legacyOnly?: boolean; // new /v2/registries/... paths answer 404 (to test the fallback to /v2/registry/...)
  buildAccessToken?: string; // the job's System.AccessToken accepted by the timeline endpoint; default 'ado_job_access_token'
  project?: string;
  buildId?: string; // defaults 'demo-project', '42'
}
export interface Emulator {
  apiUrl: string; // 'http://127.0.0.1:PORT' : DO API, /v2/registry/auth, and the ADO REST API
  registryHost: string; // '127.0.0.1:PORT2' of the token-auth registry front ('' without upstreamRegistry)
  collectionUri: string; // `${apiUrl}/ado/` (ends with '/', like System.CollectionUri)
  project: string;
  buildId: string;
  token: string;
  buildAccessToken: string;
  requests: RequestRecord[];
  startGc(registry?: string, opts?: { steps?: GcStep[]; finalStatus?: string; type?: string; startedSecondsAgo?: number }): GcRecord; // a GC started "elsewhere" (another stage); startedSecondsAgo backdates it
  finishGc(registry?: string, status?: string): void; // force the active GC terminal now (default 'succeeded')
  activeGc(registry?: string): GcRecord | undefined;
  gcs(registry?: string): GcRecord[]; // newest first
  addPastGcs(registry: string, durationsSeconds: number[]): void; // history for the list endpoint (succeeded, in the past)
  /** A record the list shows with a non-terminal status (updated that long ago) while GET says none is active. */
  addStaleGc(registry: string, status: string, updatedSecondsAgo: number): GcRecord;
  setStages(stages: StageSpec[]): void; // timeline stage script; times count from this call
  fault(endpoint: EndpointKey, fault: Fault | AnswerFault): void;
  clearFaults(): void;
  tokenRequests: Array<{ at: number; scopes: string[]; granted: boolean; reason?: string }>;
  stop(): Promise<void>; // closes both listeners and all sockets promptly
  // ---- additions ----
  /** The registry names, first one is the default. */
  registries: string[];
  /** Issues docker credentials as GET .../docker-credentials would (no HTTP, no rate limit). */
  dockerCredentials(opts?: { readWrite?: boolean; expirySeconds?: number }): { username: string; password: string; auth: string };
  /** Requests logged for one endpoint (and optionally one token). */
  count(endpoint: EndpointKey | 'other', token?: string): number;
}

export const DEFAULT_TOKEN = 'dop_v1_emulator_token';
export const DEFAULT_BUILD_ACCESS_TOKEN = 'ado_job_access_token';
export const TOKEN_SERVICE = 'registry.digitalocean.com';
export const DEFAULT_GC_STEPS: GcStep[] = [
  { status: 'requested', seconds: 0.3 },
  { status: 'waiting for write JWTs to expire', seconds: 0.5 },
  { status: 'scanning manifests', seconds: 0.5 },
  { status: 'deleting unreferenced blobs', seconds: 0.5 },
];
export const GC_TYPES = ['untagged manifests only', 'unreferenced blobs only', 'untagged manifests and unreferenced blobs'];
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const CANCEL_MS = 500;
const ISSUED_TOKEN_TTL_SECONDS = 300;

// ---------------------------------------------------------------------------------------------
// internal state

interface GcInternal {
  uuid: string;
  registry: string;
  type: string;
  createdAt: number;
  steps: GcStep[];
  finalStatus: string;
  blobs: number;
  freed: number;
  cancelAt?: number;
  forced?: { at: number; status: string };
  /** Listed with a non-terminal status, but not the active GC (a stale record). */
  stale?: { status: string; updatedAt: number };
}
interface GcState {
  status: string;
  updatedAt: number;
  terminalAt?: number;
}
interface ParsedScope {
  raw: string;
  type: string;
  name: string;
  actions: string[];
}
interface IssuedToken {
  scopes: ParsedScope[];
  expiresAt: number;
}
interface DockerCred {
  readWrite: boolean;
  expiresAt?: number;
}
interface StageInternal {
  spec: StageSpec;
  id: string;
  order: number;
}
interface FaultInternal {
  fault: AnyFault;
  left: number;
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
function isoMillis(ms: number): string {
  return new Date(ms).toISOString();
}
function randInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

function gcStateAt(gc: GcInternal, now: number): GcState {
  if (gc.stale) return { status: gc.stale.status, updatedAt: gc.stale.updatedAt, terminalAt: gc.stale.updatedAt };
  if (gc.forced && now >= gc.forced.at) {
    return { status: gc.forced.status, updatedAt: gc.forced.at, terminalAt: TERMINAL.has(gc.forced.status) ? gc.forced.at : undefined };
  }
  if (gc.cancelAt !== undefined) {
    if (now < gc.cancelAt + CANCEL_MS) return { status: 'cancelling', updatedAt: gc.cancelAt };
    return { status: 'cancelled', updatedAt: gc.cancelAt + CANCEL_MS, terminalAt: gc.cancelAt + CANCEL_MS };
  }
  let t = gc.createdAt;
  for (const step of gc.steps) {
    const end = t + step.seconds * 1000;
    if (now < end) return { status: step.status, updatedAt: t };
    t = end;
  }
  return { status: gc.finalStatus, updatedAt: t, terminalAt: TERMINAL.has(gc.finalStatus) ? t : undefined };
}

function gcRecord(gc: GcInternal, now: number): GcRecord {
  const s = gcStateAt(gc, now);
  const done = s.status === 'succeeded';
  return {
    uuid: gc.uuid,
    registry_name: gc.registry,
    status: s.status,
    type: gc.type,
    created_at: isoSeconds(gc.createdAt),
    updated_at: isoMillis(s.updatedAt),
    blobs_deleted: done ? gc.blobs : 0,
    freed_bytes: done ? gc.freed : 0,
  };
}

function parseScope(raw: string): ParsedScope | undefined {
  const first = raw.indexOf(':');
  const last = raw.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  return {
    raw,
    type: raw.slice(0, first),
    name: raw.slice(first + 1, last),
    actions: raw
      .slice(last + 1)
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean),
  };
}

function doError(id: string, message: string, requestId: string): string {
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
function idFor(status: number): [string, string] {
  return STATUS_IDS[status] ?? (status >= 500 ? ['server_error', 'Unexpected server-side error'] : ['error', 'error']);
}

// ---------------------------------------------------------------------------------------------

class EmulatorImpl implements Emulator {
  apiUrl = '';
  registryHost = '';
  collectionUri = '';
  project: string;
  buildId: string;
  token: string;
  buildAccessToken: string;
  registries: string[];
  requests: RequestRecord[] = [];
  tokenRequests: Array<{ at: number; scopes: string[]; granted: boolean; reason?: string }> = [];

  private readonly tokens = new Map<string, Set<string>>();
  private readonly tailMs: number;
  private readonly gcSteps: GcStep[];
  private readonly gcFinal: string;
  private readonly perMinute: number;
  private readonly perHour: number;
  private readonly legacyOnly: boolean;
  private readonly upstream?: URL;
  private readonly registryCreated = new Map<string, number>();
  private readonly gcList = new Map<string, GcInternal[]>(); // newest first
  private readonly issued = new Map<string, IssuedToken>();
  private readonly creds = new Map<string, DockerCred>();
  private readonly hits = new Map<string, number[]>(); // token -> request times (ms), oldest first
  private readonly faults = new Map<EndpointKey, FaultInternal[]>();
  private stages: StageInternal[] = [];
  private stagesSetAt = Date.now();
  private readonly phaseId = crypto.randomUUID();
  private readonly jobId = crypto.randomUUID();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sockets = new Set<net.Socket>();
  private readonly servers: http.Server[] = [];
  private readonly upstreamAgent = new http.Agent({ keepAlive: true });
  private stopped = false;

  constructor(opts: EmulatorOptions) {
    this.token = opts.token ?? DEFAULT_TOKEN;
    this.tokens.set(this.token, new Set(opts.tokenScopes ?? ['registry:read', 'registry:update']));
    for (const [t, scopes] of Object.entries(opts.extraTokens ?? {})) this.tokens.set(t, new Set(scopes));
    this.registries = opts.registries && opts.registries.length > 0 ? [...opts.registries] : ['demo-registry'];
    const base = Date.now() - 400 * 86400_000;
    this.registries.forEach((r, i) => {
      this.registryCreated.set(r, base + i * 86400_000);
      this.gcList.set(r, []);
    });
    this.tailMs = Math.max(0, (opts.tailSeconds ?? 0) * 1000);
    this.gcSteps = opts.gcSteps ?? DEFAULT_GC_STEPS;
    this.gcFinal = opts.gcFinalStatus ?? 'succeeded';
    this.perMinute = opts.rateLimitPerMinute ?? 250;
    this.perHour = opts.rateLimitPerHour ?? 5000;
    this.legacyOnly = opts.legacyOnly ?? false;
    this.buildAccessToken = opts.buildAccessToken ?? DEFAULT_BUILD_ACCESS_TOKEN;
    this.project = opts.project ?? 'demo-project';
    this.buildId = opts.buildId ?? '42';
    if (opts.upstreamRegistry) this.upstream = new URL(opts.upstreamRegistry);
  }

  // ------------------------------------------------------------------ lifecycle

  async listen(): Promise<void> {
    const api = http.createServer((req, res) => {
      this.handleApi(req, res).catch((err) => this.internalError(res, err));
    });
    const apiPort = await this.listenOn(api);
    this.apiUrl = `http://127.0.0.1:${apiPort}`;
    this.collectionUri = `${this.apiUrl}/ado/`;
    if (this.upstream) {
      const front = http.createServer((req, res) => {
        this.handleFront(req, res).catch((err) => this.internalError(res, err));
      });
      const frontPort = await this.listenOn(front);
      this.registryHost = `127.0.0.1:${frontPort}`;
    }
  }

  private listenOn(server: http.Server): Promise<number> {
    this.servers.push(server);
    server.keepAliveTimeout = 5000;
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.upstreamAgent.destroy();
    await Promise.all(closing);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private internalError(res: http.ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const rid = crypto.randomUUID();
    res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': rid });
    res.end(doError('server_error', `emulator error: ${err instanceof Error ? err.message : String(err)}`, rid));
  }

  // ------------------------------------------------------------------ test controls

  private reg(registry?: string): string {
    return registry ?? this.registries[0];
  }

  private ensureRegistry(name: string): void {
    if (!this.gcList.has(name)) throw new Error(`emulator: unknown registry '${name}' (known: ${this.registries.join(', ')})`);
  }

  private activeInternal(registry: string, now = Date.now()): GcInternal | undefined {
    return (this.gcList.get(registry) ?? []).find((g) => gcStateAt(g, now).terminalAt === undefined);
  }

  private createGc(registry: string, type: string, steps: GcStep[], finalStatus: string): GcInternal {
    const gc: GcInternal = {
      uuid: crypto.randomUUID(),
      registry,
      type,
      createdAt: Date.now(),
      steps: steps.map((s) => ({ ...s })),
      finalStatus,
      blobs: randInt(0, 500),
      freed: randInt(0, 5_000_000_000),
    };
    this.gcList.get(registry)!.unshift(gc);
    return gc;
  }

  startGc(registry?: string, opts: { steps?: GcStep[]; finalStatus?: string; type?: string; startedSecondsAgo?: number } = {}): GcRecord {
    const r = this.reg(registry);
    this.ensureRegistry(r);
    if (this.activeInternal(r)) throw new Error(`emulator: a garbage collection is already active for ${r}`);
    const gc = this.createGc(r, opts.type ?? 'untagged manifests and unreferenced blobs', opts.steps ?? this.gcSteps, opts.finalStatus ?? this.gcFinal);
    // Steps count from created_at, so a backdated GC is already that far along.
    if (opts.startedSecondsAgo) gc.createdAt -= opts.startedSecondsAgo * 1000;
    return gcRecord(gc, Date.now());
  }

  finishGc(registry?: string, status = 'succeeded'): void {
    const r = this.reg(registry);
    this.ensureRegistry(r);
    const gc = this.activeInternal(r);
    if (gc) gc.forced = { at: Date.now(), status };
  }

  activeGc(registry?: string): GcRecord | undefined {
    const r = this.reg(registry);
    this.ensureRegistry(r);
    const now = Date.now();
    const gc = this.activeInternal(r, now);
    return gc ? gcRecord(gc, now) : undefined;
  }

  gcs(registry?: string): GcRecord[] {
    const r = this.reg(registry);
    this.ensureRegistry(r);
    const now = Date.now();
    return this.gcList.get(r)!.map((g) => gcRecord(g, now));
  }

  /** durationsSeconds[0] is the most recent past GC; each ended at least an hour before the previous one started. */
  addPastGcs(registry: string, durationsSeconds: number[]): void {
    const r = this.reg(registry);
    this.ensureRegistry(r);
    const list = this.gcList.get(r)!;
    // place them before everything already there (older than the oldest existing entry)
    let end = Math.min(Date.now(), ...list.map((g) => g.createdAt)) - 3600_000;
    for (const d of durationsSeconds) {
      const created = Math.floor((end - d * 1000) / 1000) * 1000;
      const gc: GcInternal = {
        uuid: crypto.randomUUID(),
        registry: r,
        type: 'untagged manifests and unreferenced blobs',
        createdAt: created,
        steps: [{ status: 'scanning manifests', seconds: d }],
        finalStatus: 'succeeded',
        blobs: randInt(0, 500),
        freed: randInt(0, 5_000_000_000),
      };
      list.push(gc);
      end = created - 3600_000 * 6;
    }
  }

  addStaleGc(registry: string, status: string, updatedSecondsAgo: number): GcRecord {
    const r = this.reg(registry);
    this.ensureRegistry(r);
    const updatedAt = Date.now() - updatedSecondsAgo * 1000;
    const gc: GcInternal = {
      uuid: crypto.randomUUID(),
      registry: r,
      type: 'untagged manifests and unreferenced blobs',
      createdAt: updatedAt - 60_000,
      steps: [],
      finalStatus: 'succeeded',
      blobs: 0,
      freed: 0,
      stale: { status, updatedAt },
    };
    this.gcList.get(r)!.unshift(gc);
    return gcRecord(gc, Date.now());
  }

  setStages(stages: StageSpec[]): void {
    this.stagesSetAt = Date.now();
    this.stages = stages.map((spec, i) => ({ spec: { ...spec }, id: crypto.randomUUID(), order: i + 1 }));
  }

  fault(endpoint: EndpointKey, fault: AnyFault): void {
    const left = fault.times ?? 1;
    if (left <= 0) return;
    const q = this.faults.get(endpoint) ?? [];
    q.push({ fault: { ...fault }, left });
    this.faults.set(endpoint, q);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  dockerCredentials(opts: { readWrite?: boolean; expirySeconds?: number } = {}): { username: string; password: string; auth: string } {
    const secret = crypto.randomBytes(32).toString('hex');
    const expiry = opts.expirySeconds ?? 0;
    this.creds.set(secret, { readWrite: !!opts.readWrite, expiresAt: expiry > 0 ? Date.now() + expiry * 1000 : undefined });
    return { username: secret, password: secret, auth: Buffer.from(`${secret}:${secret}`).toString('base64') };
  }

  count(endpoint: EndpointKey | 'other', token?: string): number {
    return this.requests.filter((r) => r.endpoint === endpoint && (token === undefined || r.token === token)).length;
  }

  // ------------------------------------------------------------------ shared request plumbing

  private takeFault(endpoint: EndpointKey): AnyFault | undefined {
    const q = this.faults.get(endpoint);
    if (!q || q.length === 0) return undefined;
    const head = q[0];
    head.left -= 1;
    if (head.left <= 0) q.shift();
    return head.fault;
  }

  /** Applies a fault; returns true when the request was fully answered (or dropped). */
  private async applyFault(endpoint: EndpointKey, rec: RequestRecord, res: http.ServerResponse, extra: Record<string, string>): Promise<boolean> {
    const f = this.takeFault(endpoint);
    if (!f) return false;
    const rid = crypto.randomUUID();
    switch (f.kind) {
      case 'drop':
        rec.status = 0;
        res.socket?.destroy();
        return true;
      case 'slow':
        await this.delay(f.delayMs ?? 5000);
        return this.stopped || res.destroyed;
      case 'malformed':
        this.send(res, rec, 200, '{"garbage_collection": {', { ...extra, 'x-request-id': rid });
        return true;
      case '429': {
        const ra = String(f.retryAfterSeconds ?? 1);
        this.send(res, rec, 429, doError('too_many_requests', 'API Rate limit exceeded.', rid), { ...extra, 'x-request-id': rid, 'retry-after': ra });
        return true;
      }
      case '5xx': {
        const status = f.status ?? 503;
        const [id, msg] = idFor(status);
        this.send(res, rec, status, doError(id, msg, rid), { ...extra, 'x-request-id': rid });
        return true;
      }
      case 'status': {
        const status = f.status ?? 422;
        const [id, msg] = idFor(status);
        this.send(res, rec, status, doError(id, f.message ?? msg, rid), { ...extra, 'x-request-id': rid });
        return true;
      }
      case 'raw': {
        const body = f.body ?? '<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><hr><center>nginx</center></body></html>';
        this.send(res, rec, f.status ?? 404, body, { ...extra, 'content-type': f.contentType ?? 'text/html; charset=utf-8' });
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
    for (let i = 0; !this.stopped && !res.destroyed && !res.writableEnded; i++) {
      res.write(i < head.length ? head[i] : ' ');
      await this.delay(intervalMs);
    }
  }

  private send(res: http.ServerResponse, rec: RequestRecord, status: number, body: string, headers: Record<string, string> = {}): void {
    rec.status = status;
    if (res.destroyed) return;
    const buf = Buffer.from(body, 'utf8');
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(buf.length), ...headers });
    res.end(buf);
  }

  private readBody(req: http.IncomingMessage, limit = 1 << 20): Promise<string> {
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

  // ------------------------------------------------------------------ DO API + token + ADO listener

  private classify(
    method: string,
    pathname: string,
  ): {
    endpoint: EndpointKey | 'other';
    route?: string;
    name?: string;
    uuid?: string;
    newPath?: boolean;
  } {
    const p = pathname.replace(/\/+$/, '') || '/';
    if (p.startsWith('/ado/')) return { endpoint: 'timeline', route: 'timeline' };
    if (p === '/v2/registry/auth') return { endpoint: 'token', route: 'token' };
    if (p === '/v2/registry') return { endpoint: 'registry', route: 'registry-legacy' };
    if (p === '/v2/registries') return { endpoint: 'registry', route: 'registries', newPath: true };
    if (p === '/v2/registry/docker-credentials') return { endpoint: 'credentials', route: 'credentials' };
    let m = /^\/v2\/(registry|registries)\/([^/]+)(?:\/(.*))?$/.exec(p);
    if (!m) return { endpoint: 'other' };
    const newPath = m[1] === 'registries';
    const name = decodeURIComponent(m[2]);
    const rest = m[3] ?? '';
    if (rest === '' && newPath) return { endpoint: 'registry', route: 'registry-named', name, newPath };
    if (rest === 'docker-credentials' && newPath) return { endpoint: 'credentials', route: 'credentials', name, newPath };
    if (rest === 'garbage-collection') {
      if (method === 'POST') return { endpoint: 'gc-start', route: 'gc-start', name, newPath };
      return { endpoint: 'gc-get', route: 'gc-get', name, newPath };
    }
    if (rest === 'garbage-collections') return { endpoint: 'gc-list', route: 'gc-list', name, newPath };
    m = /^garbage-collection\/([^/]+)$/.exec(rest);
    if (m) return { endpoint: 'gc-cancel', route: 'gc-cancel', name, uuid: decodeURIComponent(m[1]), newPath };
    return { endpoint: 'other' };
  }

  private bearer(req: http.IncomingMessage): string | undefined {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    return m ? m[1] : undefined;
  }

  private basic(req: http.IncomingMessage): { user: string; pass: string } | undefined {
    const h = req.headers.authorization ?? '';
    const m = /^Basic\s+(\S+)\s*$/i.exec(h);
    if (!m) return undefined;
    const dec = Buffer.from(m[1], 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0) return undefined;
    return { user: dec.slice(0, i), pass: dec.slice(i + 1) };
  }

  /** Sliding-window rate limit state for a token (does not count). */
  private rateHeaders(token: string | undefined, now: number): Record<string, string> {
    const list = token ? this.prune(token, now) : [];
    const reset = list.length > 0 ? Math.ceil((list[0] + 3600_000) / 1000) : Math.ceil(now / 1000);
    return {
      'ratelimit-limit': String(this.perHour),
      'ratelimit-remaining': String(Math.max(0, this.perHour - list.length)),
      'ratelimit-reset': String(reset),
    };
  }

  private prune(token: string, now: number): number[] {
    const list = this.hits.get(token) ?? [];
    let drop = 0;
    while (drop < list.length && list[drop] <= now - 3600_000) drop++;
    if (drop > 0) list.splice(0, drop);
    this.hits.set(token, list);
    return list;
  }

  /** Counts the request; returns retry-after seconds (or 0 without one) when over a limit, else undefined. */
  private rateCheck(token: string, now: number): { retryAfter?: number } | undefined {
    const list = this.prune(token, now);
    const minuteStart = now - 60_000;
    let firstInMinute = list.length;
    for (let i = list.length - 1; i >= 0 && list[i] > minuteStart; i--) firstInMinute = i;
    const inMinute = list.length - firstInMinute;
    if (inMinute >= this.perMinute) {
      const oldest = list[firstInMinute];
      return { retryAfter: Math.max(1, Math.ceil((oldest + 60_000 - now) / 1000)) };
    }
    if (list.length >= this.perHour) return {};
    list.push(now);
    return undefined;
  }

  private async handleApi(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const now = Date.now();
    const url = new URL(req.url ?? '/', this.apiUrl);
    const method = (req.method ?? 'GET').toUpperCase();
    const c = this.classify(method, url.pathname);
    const rec: RequestRecord = { at: now, method, path: url.pathname + url.search, endpoint: c.endpoint, status: 0 };
    this.requests.push(rec);

    if (c.endpoint === 'timeline') {
      const bt = this.bearer(req);
      const bb = this.basic(req);
      rec.token = bt ?? bb?.pass;
      if (await this.applyFault('timeline', rec, res, {})) return;
      return this.handleTimeline(req, res, rec, url);
    }
    if (c.endpoint === 'token') {
      if (await this.applyFault('token', rec, res, {})) return;
      return this.handleToken(req, res, rec, url);
    }

    const apiToken = this.bearer(req);
    rec.token = apiToken;
    const rid = crypto.randomUUID();
    const headers = (): Record<string, string> => ({
      ...this.rateHeaders(apiToken && this.tokens.has(apiToken) ? apiToken : undefined, Date.now()),
      'x-request-id': rid,
    });
    const err = (status: number, id: string, message: string, extra: Record<string, string> = {}): void =>
      this.send(res, rec, status, doError(id, message, rid), { ...headers(), ...extra });

    if (c.endpoint !== 'other' && (await this.applyFault(c.endpoint, rec, res, headers()))) return;
    if (c.endpoint === 'other' || !c.route) return err(404, 'not_found', 'Your request could not be routed.');
    if (this.legacyOnly && c.newPath) return err(404, 'not_found', 'Your request could not be routed.');

    // authentication
    const scopes = apiToken ? this.tokens.get(apiToken) : undefined;
    if (!apiToken || !scopes) return err(401, 'unauthorized', 'Unable to authenticate you.');

    // rate limit (per token, sliding windows)
    const limited = this.rateCheck(apiToken, Date.now());
    if (limited) {
      const extra: Record<string, string> = limited.retryAfter !== undefined ? { 'retry-after': String(limited.retryAfter) } : {};
      return err(429, 'too_many_requests', 'API Rate limit exceeded.', extra);
    }

    const has = (s: string): boolean => scopes.has(s) || scopes.has('*') || scopes.has('registry:*');
    const forbidden = (): void => err(403, 'forbidden', 'You are not authorized to perform this operation');
    const notRouted = (): void => err(404, 'not_found', 'Your request could not be routed.');
    const noRegistry = (): void => err(404, 'not_found', 'registry does not exist');
    const json = (status: number, body: unknown): void => this.send(res, rec, status, JSON.stringify(body), headers());

    switch (c.route) {
      case 'registry-legacy':
      case 'registries':
      case 'registry-named': {
        if (method !== 'GET') return notRouted();
        if (!has('registry:read')) return forbidden();
        if (c.route === 'registry-legacy') {
          if (this.registries.length > 1)
            return err(
              412,
              'precondition_failed',
              "This API is not supported if you have created multiple registries. Please use '/v2/registries/{registry_name}' instead.",
            );
          return json(200, { registry: this.registryInfo(this.registries[0], true) });
        }
        if (c.route === 'registries') {
          const regs = this.registries.map((r) => this.registryInfo(r, false));
          return json(200, { registries: regs, total_storage_usage_bytes: regs.reduce((a, r) => a + (r.storage_usage_bytes as number), 0) });
        }
        if (!this.gcList.has(c.name!)) return noRegistry();
        return json(200, { registry: this.registryInfo(c.name!, false) });
      }
      case 'credentials': {
        if (method !== 'GET') return notRouted();
        const readWrite = /^(true|1)$/i.test(url.searchParams.get('read_write') ?? '');
        if (!has('registry:read') || (readWrite && !has('registry:update'))) return forbidden();
        if (c.name !== undefined && !this.gcList.has(c.name)) return noRegistry();
        const expiry = Number(url.searchParams.get('expiry_seconds') ?? '0');
        if (!Number.isFinite(expiry) || expiry < 0) return err(422, 'unprocessable_entity', 'expiry_seconds must be a non-negative integer');
        const cred = this.dockerCredentials({ readWrite, expirySeconds: Math.floor(expiry) });
        const host = this.registryHost || TOKEN_SERVICE;
        return json(200, { auths: { [host]: { auth: cred.auth } } });
      }
      case 'gc-start': {
        if (!has('registry:update')) return forbidden();
        if (!this.gcList.has(c.name!)) return noRegistry();
        let type = 'unreferenced blobs only';
        const raw = await this.readBody(req);
        if (raw.trim() !== '') {
          let body: unknown;
          try {
            body = JSON.parse(raw);
          } catch {
            return err(400, 'bad_request', 'invalid JSON in request body');
          }
          const t = body && typeof body === 'object' ? (body as Record<string, unknown>).type : undefined;
          if (t !== undefined && t !== null && t !== '') {
            if (typeof t !== 'string' || !GC_TYPES.includes(t))
              return err(422, 'unprocessable_entity', `invalid garbage collection type: must be one of ${GC_TYPES.map((x) => `"${x}"`).join(', ')}`);
            type = t;
          }
        }
        if (this.activeInternal(c.name!)) return err(409, 'conflict', 'a garbage collection is already active for this registry');
        const gc = this.createGc(c.name!, type, this.gcSteps, this.gcFinal);
        return json(201, { garbage_collection: gcRecord(gc, Date.now()) });
      }
      case 'gc-get': {
        if (method !== 'GET') return notRouted();
        if (!has('registry:read')) return forbidden();
        if (!this.gcList.has(c.name!)) return noRegistry();
        const active = this.activeGc(c.name!);
        if (!active) return err(404, 'not_found', 'The resource you requested could not be found.');
        return json(200, { garbage_collection: active });
      }
      case 'gc-list': {
        if (method !== 'GET') return notRouted();
        if (!has('registry:read')) return forbidden();
        if (!this.gcList.has(c.name!)) return noRegistry();
        const all = this.gcs(c.name!);
        const pageRaw = url.searchParams.get('page');
        const perRaw = url.searchParams.get('per_page');
        const page = Math.max(1, Math.floor(Number(pageRaw ?? '1')) || 1);
        const per = Math.min(200, Math.max(1, Math.floor(Number(perRaw ?? '20')) || 20));
        const pages = Math.max(1, Math.ceil(all.length / per));
        const body: Record<string, unknown> = { garbage_collections: all.slice((page - 1) * per, page * per) };
        if (pages > 1) {
          const link = (n: number): string => `${this.apiUrl}${url.pathname}?page=${n}&per_page=${per}`;
          const p: Record<string, string> = {};
          if (page > 1) {
            p.first = link(1);
            p.prev = link(Math.min(page - 1, pages));
          }
          if (page < pages) {
            p.next = link(page + 1);
            p.last = link(pages);
          }
          body.links = { pages: p };
        }
        body.meta = { total: all.length };
        return json(200, body);
      }
      case 'gc-cancel': {
        if (method !== 'PUT') return notRouted();
        if (!has('registry:update')) return forbidden();
        if (!this.gcList.has(c.name!)) return noRegistry();
        const raw = await this.readBody(req);
        let cancel = false;
        try {
          cancel = (JSON.parse(raw || '{}') as Record<string, unknown>).cancel === true;
        } catch {
          return err(400, 'bad_request', 'invalid JSON in request body');
        }
        if (!cancel) return err(422, 'unprocessable_entity', 'only {"cancel": true} is supported');
        const nowC = Date.now();
        const gc = this.activeInternal(c.name!, nowC);
        if (!gc || gc.uuid !== c.uuid) return err(404, 'not_found', 'The resource you requested could not be found.');
        if (gc.cancelAt === undefined && !(gc.forced && gc.forced.at <= nowC)) gc.cancelAt = nowC;
        else if (gc.forced) {
          // a forced non-terminal status (finishGc with a custom status): cancel from now
          gc.forced = undefined;
          gc.cancelAt = nowC;
        }
        return json(200, { garbage_collection: gcRecord(gc, Date.now()) });
      }
    }
    return notRouted();
  }

  private registryInfo(name: string, withSubscription: boolean): Record<string, unknown> {
    const created = this.registryCreated.get(name) ?? Date.now();
    const info: Record<string, unknown> = {
      name,
      created_at: isoSeconds(created),
      region: 'fra1',
      storage_usage_bytes: 29393920,
      storage_usage_bytes_updated_at: isoMillis(Date.now() - 60_000),
    };
    if (withSubscription) {
      info.subscription = {
        tier: {
          name: 'Professional',
          slug: 'professional',
          included_repositories: 0,
          included_storage_bytes: 107374182400,
          allow_storage_overage: true,
          included_bandwidth_bytes: 1099511627776,
          monthly_price_in_cents: 2000,
          storage_overage_price_in_cents: 2,
        },
        created_at: isoSeconds(created),
        updated_at: isoSeconds(created + 86400_000),
      };
    }
    return info;
  }

  // ------------------------------------------------------------------ token endpoint

  /** Whether push tokens are refused for a registry right now, and why. */
  private pushBlocked(registry: string, now: number): string | undefined {
    const list = this.gcList.get(registry) ?? [];
    for (const gc of list) {
      const s = gcStateAt(gc, now);
      if (s.terminalAt === undefined) return `garbage collection active (${s.status})`;
      if (this.tailMs > 0 && now - s.terminalAt < this.tailMs) return 'garbage collection finished less than tailSeconds ago';
    }
    return undefined;
  }

  private handleToken(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord, url: URL): void {
    const now = Date.now();
    const scopesRaw = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    const unauthorized = (reason: string): void => {
      this.tokenRequests.push({ at: now, scopes: scopesRaw, granted: false, reason });
      this.send(res, rec, 401, '{"id": "Unauthorized", "message": "Unable to authenticate you" }', { 'x-request-id': crypto.randomUUID() });
    };
    if ((req.method ?? 'GET').toUpperCase() !== 'GET') return unauthorized(`method ${req.method} not supported`);
    const b = this.basic(req);
    if (!b) return unauthorized('missing basic credentials');
    // who is it?
    let readWrite: boolean;
    const apiScopes = this.tokens.get(b.pass) ?? (b.pass === '' ? this.tokens.get(b.user) : undefined);
    if (apiScopes) {
      rec.token = this.tokens.has(b.pass) ? b.pass : b.user;
      const any = [...apiScopes].some((s) => s === '*' || s.startsWith('registry:'));
      if (!any) return unauthorized('API token has no registry scope');
      readWrite = apiScopes.has('registry:update') || apiScopes.has('*') || apiScopes.has('registry:*');
    } else {
      const cred = this.creds.get(b.pass);
      if (!cred || b.user !== b.pass) return unauthorized('bad credentials');
      rec.token = b.user;
      if (cred.expiresAt !== undefined && now >= cred.expiresAt) return unauthorized('credentials expired');
      readWrite = cred.readWrite;
    }
    const parsed: ParsedScope[] = [];
    for (const raw of scopesRaw) {
      const p = parseScope(raw);
      if (p) parsed.push(p);
    }
    for (const p of parsed) {
      const wantsWrite = p.actions.includes('push') || p.actions.includes('*');
      if (!wantsWrite) continue;
      if (!readWrite) return unauthorized('read-only credentials cannot get a push scope');
      let registry = p.name.split('/')[0];
      if (!this.gcList.has(registry)) registry = this.registries[0];
      const blocked = this.pushBlocked(registry, now);
      if (blocked) return unauthorized(`${blocked} on ${registry}: write-scoped JWTs are not issued`);
    }
    const t = crypto.randomBytes(24).toString('base64url');
    this.issued.set(t, { scopes: parsed, expiresAt: now + ISSUED_TOKEN_TTL_SECONDS * 1000 });
    this.tokenRequests.push({ at: now, scopes: scopesRaw, granted: true });
    this.send(res, rec, 200, JSON.stringify({ token: t, access_token: t, expires_in: ISSUED_TOKEN_TTL_SECONDS, issued_at: isoMillis(now) }), {
      'x-request-id': crypto.randomUUID(),
    });
  }

  // ------------------------------------------------------------------ ADO timeline

  private handleTimeline(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord, url: URL): void {
    const bt = this.bearer(req);
    const bb = this.basic(req);
    const ok = bt === this.buildAccessToken || bb?.pass === this.buildAccessToken;
    if (!ok) {
      rec.status = 401;
      res.writeHead(401, {
        'content-type': 'text/plain; charset=utf-8',
        'www-authenticate': 'Bearer authorization_uri=https://login.microsoftonline.com/common',
      });
      res.end('Access denied. The token is missing, invalid or expired.');
      return;
    }
    const m = /^\/ado\/([^/]+)\/_apis\/build\/builds\/([^/]+)\/timeline(?:\/([^/]*))?\/?$/.exec(url.pathname);
    const adoErr = (status: number, typeKey: string, message: string): void =>
      this.send(
        res,
        rec,
        status,
        JSON.stringify({
          $id: '1',
          innerException: null,
          message,
          typeName: `Microsoft.TeamFoundation.Build.WebApi.${typeKey}, Microsoft.TeamFoundation.Build2.WebApi`,
          typeKey,
          errorCode: 0,
          eventId: 3000,
        }),
      );
    if (!m || (req.method ?? 'GET').toUpperCase() !== 'GET') return adoErr(404, 'RouteNotFoundException', 'The requested resource was not found.');
    const project = decodeURIComponent(m[1]);
    const buildId = decodeURIComponent(m[2]);
    if (project !== this.project) return adoErr(404, 'ProjectDoesNotExistWithNameException', `TF200016: The following project does not exist: ${project}.`);
    if (buildId !== this.buildId) return adoErr(404, 'BuildNotFoundException', `The requested build ${buildId} could not be found.`);
    const records = this.timelineRecords(Date.now());
    this.send(
      res,
      rec,
      200,
      JSON.stringify({
        records,
        lastChangedBy: '00000000-0000-0000-0000-000000000000',
        lastChangedOn: isoMillis(Date.now()),
        id: this.phaseId,
        changeId: records.length,
        url: `${this.collectionUri}${this.project}/_apis/build/builds/${this.buildId}/timeline`,
        count: records.length,
      }),
    );
  }

  private timelineRecords(now: number): Record<string, unknown>[] {
    const elapsed = (now - this.stagesSetAt) / 1000;
    const at = (s: number): string => isoMillis(this.stagesSetAt + s * 1000);
    const base = (o: Record<string, unknown>): Record<string, unknown> => ({
      previousAttempts: [],
      id: '',
      parentId: null,
      type: 'Stage',
      name: '',
      startTime: null,
      finishTime: null,
      currentOperation: null,
      percentComplete: null,
      state: 'pending',
      result: null,
      resultCode: null,
      changeId: 1,
      lastModified: isoMillis(now),
      workerName: null,
      order: 1,
      details: null,
      errorCount: 0,
      warningCount: 0,
      url: null,
      log: null,
      task: null,
      attempt: 1,
      identifier: null,
      ...o,
    });
    const out: Record<string, unknown>[] = [];
    const currentStage: StageInternal | undefined = this.stages.find((s) => s.spec.current) ?? this.stages.find((s) => s.spec.state === 'inProgress');
    for (const st of this.stages) {
      const spec = st.spec;
      let state: string = spec.state;
      let startTime: string | null = null;
      let finishTime: string | null = null;
      if (state === 'inProgress') startTime = at(0);
      if (state === 'completed') {
        startTime = at(0);
        finishTime = at(0);
      }
      if (state === 'pending' && spec.startAfterSeconds !== undefined && elapsed >= spec.startAfterSeconds) {
        state = 'inProgress';
        startTime = at(spec.startAfterSeconds);
      }
      if (state !== 'completed' && spec.completeAfterSeconds !== undefined && elapsed >= spec.completeAfterSeconds) {
        if (startTime === null) startTime = at(Math.min(spec.startAfterSeconds ?? spec.completeAfterSeconds, spec.completeAfterSeconds));
        state = 'completed';
        finishTime = at(spec.completeAfterSeconds);
      }
      const result = state === 'completed' ? (spec.result ?? 'succeeded') : null;
      if (result === 'skipped' && spec.state !== 'inProgress') startTime = null;
      out.push(
        base({
          id: st.id,
          type: 'Stage',
          name: spec.displayName ?? spec.name,
          identifier: spec.name,
          state,
          result,
          startTime,
          finishTime,
          order: st.order,
          percentComplete: state === 'completed' ? 100 : null,
          errorCount: result === 'failed' ? 1 : 0,
        }),
      );
    }
    const stageName = currentStage?.spec.name ?? '__default';
    out.push(
      base({
        id: this.phaseId,
        parentId: currentStage?.id ?? null,
        type: 'Phase',
        name: 'Job',
        identifier: `${stageName}.__default`,
        state: 'inProgress',
        startTime: isoMillis(this.stagesSetAt),
        order: 1,
      }),
    );
    out.push(
      base({
        id: this.jobId,
        parentId: this.phaseId,
        type: 'Job',
        name: 'Job',
        identifier: `${stageName}.__default.__default`,
        state: 'inProgress',
        startTime: isoMillis(this.stagesSetAt),
        workerName: 'emulator-agent',
        order: 1,
      }),
    );
    return out;
  }

  // ------------------------------------------------------------------ registry front

  private frontRepoAndAction(method: string, pathname: string): { ping: boolean; scope?: string; repo?: string; write: boolean } {
    const write = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method);
    if (pathname === '/v2/' || pathname === '/v2') return { ping: true, write: false };
    if (pathname === '/v2/_catalog') return { ping: false, scope: 'registry:catalog:*', write: false };
    const m = /^\/v2\/(.+?)\/(manifests|blobs|tags|referrers)(\/.*)?$/.exec(pathname);
    if (!m) return { ping: false, write };
    return { ping: false, repo: m[1], write };
  }

  private tokenAllows(t: IssuedToken, repo: string, write: boolean): boolean {
    return t.scopes.some(
      (s) =>
        s.type === 'repository' &&
        (s.name === repo || s.name === '*') &&
        (s.actions.includes('*') || (write ? s.actions.includes('push') : s.actions.includes('pull') || s.actions.includes('push'))),
    );
  }

  private async handleFront(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const now = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', `http://${this.registryHost}`);
    const rec: RequestRecord = { at: now, method, path: url.pathname + url.search, endpoint: 'front', status: 0 };
    this.requests.push(rec);
    const distHeaders = { 'docker-distribution-api-version': 'registry/2.0' };
    if (await this.applyFault('front', rec, res, distHeaders)) return;

    const need = this.frontRepoAndAction(method, url.pathname);
    const scope = need.scope ?? (need.repo ? `repository:${need.repo}:${need.write ? 'pull,push' : 'pull'}` : undefined);
    const challenge = (error?: string): void => {
      let h = `Bearer realm="${this.apiUrl}/v2/registry/auth",service="${TOKEN_SERVICE}"`;
      if (scope) h += `,scope="${scope}"`;
      if (error) h += `,error="${error}"`;
      const detail = scope
        ? need.repo
          ? [{ Type: 'repository', Class: '', Name: need.repo, Action: need.write ? 'push' : 'pull' }]
          : [{ Type: 'registry', Class: '', Name: 'catalog', Action: '*' }]
        : null;
      const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail }] });
      this.send(res, rec, 401, body, { ...distHeaders, 'www-authenticate': h });
      req.resume();
    };
    const bt = this.bearer(req);
    const tok = bt ? this.issued.get(bt) : undefined;
    if (!tok || tok.expiresAt <= now) return challenge(bt ? 'invalid_token' : undefined);
    if (need.repo && !this.tokenAllows(tok, need.repo, need.write)) return challenge('insufficient_scope');
    if (need.scope && !tok.scopes.some((s) => s.raw === need.scope || (s.type === 'registry' && s.name === 'catalog'))) return challenge('insufficient_scope');
    this.proxy(req, res, rec);
  }

  private proxy(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord): void {
    const up = this.upstream!;
    const hop = new Set([
      'connection',
      'keep-alive',
      'proxy-connection',
      'transfer-encoding',
      'upgrade',
      'te',
      'trailer',
      'proxy-authorization',
      'authorization',
      'host',
    ]);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!hop.has(k) && v !== undefined) headers[k] = v;
    headers.host = up.host;
    const preq = http.request(
      {
        protocol: up.protocol,
        hostname: up.hostname,
        port: up.port || 80,
        method: req.method,
        path: req.url,
        headers,
        agent: this.upstreamAgent,
      },
      (pres) => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(pres.headers)) {
          if (v === undefined || hop.has(k)) continue;
          if (k === 'location' && typeof v === 'string') out[k] = this.rewriteLocation(v);
          else out[k] = v;
        }
        rec.status = pres.statusCode ?? 502;
        if (res.destroyed) {
          pres.resume();
          return;
        }
        res.writeHead(pres.statusCode ?? 502, pres.statusMessage, out);
        pres.pipe(res);
        pres.on('error', () => res.destroy());
      },
    );
    preq.on('error', (e) => {
      if (!res.headersSent) {
        this.send(res, rec, 502, JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `emulator front: upstream error: ${e.message}` }] }), {
          'docker-distribution-api-version': 'registry/2.0',
        });
      } else res.destroy();
    });
    req.on('aborted', () => preq.destroy());
    res.on('close', () => {
      if (!res.writableFinished) preq.destroy();
    });
    req.pipe(preq);
  }

  private rewriteLocation(loc: string): string {
    const up = this.upstream!;
    try {
      const u = new URL(loc);
      const upPort = up.port || (up.protocol === 'https:' ? '443' : '80');
      const lPort = u.port || (u.protocol === 'https:' ? '443' : '80');
      if (u.hostname === up.hostname && lPort === upPort) {
        return `http://${this.registryHost}${u.pathname}${u.search}${u.hash}`;
      }
    } catch {
      /* relative: leave as is */
    }
    return loc;
  }
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const emu = new EmulatorImpl(options);
  try {
    await emu.listen();
  } catch (err) {
    await emu.stop();
    throw err;
  }
  return emu;
}

// Test emulator: what cannot be reached from here, served over real sockets on 127.0.0.1.
//
//  - the DigitalOcean registry API (registries, garbage collection, docker credentials): digitalocean.ts,
//    over the registries and their GCs in gc.ts,
//  - the registry's Docker V2 token endpoint (/v2/registry/auth), which refuses push-scoped tokens
//    while a GC is active (the incident this project exists for): token.ts,
//  - a token-auth front for a REAL distribution registry (second listener, optional): front.ts,
//  - the registry's repositories (list tags, delete a tag or a manifest) over that same real
//    registry: repositories.ts,
//  - the Azure DevOps build timeline REST endpoint: timeline.ts,
//  - faults a test queues per endpoint: faults.ts.
//
// startEmulator() starts them; the Emulator it returns (types.ts) is how tests drive them.
// Behaviour follows docs/DIGITALOCEAN.md (DigitalOcean's public API description). Node built-ins only.

import * as crypto from 'crypto';
import * as http from 'http';
import * as net from 'net';
import { URL } from 'url';
import { DigitalOceanApi, classify } from './digitalocean';
import { AnyFault, FaultInjector } from './faults';
import { Registries, StartGcOptions } from './gc';
import { RegistryFront } from './front';
import { Repositories } from './repositories';
import { Timers, basic, bearer, doError } from './http';
import { Timeline } from './timeline';
import { TokenEndpoint, TokenRequest } from './token';
import {
  DEFAULT_BUILD_ACCESS_TOKEN,
  DEFAULT_GC_STEPS,
  DEFAULT_TOKEN,
  Emulator,
  EmulatorOptions,
  EndpointKey,
  GcRecord,
  RequestRecord,
  StageSpec,
} from './types';

export type { AnswerFault, Fault } from './faults';
export * from './types';

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
  readonly tokenRequests: TokenRequest[];

  private readonly gc: Registries;
  private readonly faults: FaultInjector;
  private readonly tokenEndpoint: TokenEndpoint;
  private readonly api: DigitalOceanApi;
  private readonly timeline: Timeline;
  private readonly front?: RegistryFront;
  private readonly timers = new Timers();
  private readonly sockets = new Set<net.Socket>();
  private readonly servers: http.Server[] = [];
  private stopped = false;

  /** Added before the front handles each request. */
  private readonly frontLatencyMs: number;

  constructor(opts: EmulatorOptions) {
    this.token = opts.token ?? DEFAULT_TOKEN;
    this.frontLatencyMs = opts.frontLatencyMs ?? 0;
    const tokens = new Map<string, Set<string>>();
    tokens.set(this.token, new Set(opts.tokenScopes ?? ['registry:read', 'registry:update']));
    for (const [t, scopes] of Object.entries(opts.extraTokens ?? {})) tokens.set(t, new Set(scopes));
    this.gc = new Registries(opts.registries, opts.gcSteps ?? DEFAULT_GC_STEPS, opts.gcFinalStatus ?? 'succeeded');
    this.registries = this.gc.names;
    this.buildAccessToken = opts.buildAccessToken ?? DEFAULT_BUILD_ACCESS_TOKEN;
    this.project = opts.project ?? 'demo-project';
    this.buildId = opts.buildId ?? '42';

    const urls = { apiUrl: () => this.apiUrl, registryHost: () => this.registryHost };
    this.faults = new FaultInjector(this.timers);
    this.tokenEndpoint = new TokenEndpoint(tokens, this.gc, Math.max(0, (opts.tailSeconds ?? 0) * 1000));
    this.tokenRequests = this.tokenEndpoint.tokenRequests;
    const limits = { perMinute: opts.rateLimitPerMinute ?? 250, perHour: opts.rateLimitPerHour ?? 5000, legacyOnly: opts.legacyOnly ?? false };
    const repositories = new Repositories(opts.upstreamRegistry ? new URL(opts.upstreamRegistry) : undefined);
    this.api = new DigitalOceanApi(tokens, limits, this.gc, this.tokenEndpoint, this.faults, repositories, urls);
    this.timeline = new Timeline(this.buildAccessToken, this.project, this.buildId, () => this.collectionUri);
    if (opts.upstreamRegistry) this.front = new RegistryFront(new URL(opts.upstreamRegistry), this.tokenEndpoint, this.faults, urls);
  }

  // ------------------------------------------------------------------ lifecycle

  async listen(): Promise<void> {
    const api = http.createServer((req, res) => {
      this.handleApi(req, res).catch((err) => this.internalError(res, err));
    });
    const apiPort = await this.listenOn(api);
    this.apiUrl = `http://127.0.0.1:${apiPort}`;
    this.collectionUri = `${this.apiUrl}/ado/`;
    if (this.front) {
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
    // A request that is not HTTP (a client's TLS ClientHello: go-containerregistry, and so cosign
    // and crane, try https first even with --allow-http-registry) gets the answer a Go http server
    // such as the real distribution registry gives it: 400 and close. Dropping the connection
    // instead reads as EOF, which go-containerregistry retries with backoff (about 300 ms each time,
    // three times per signature) before it falls back to http.
    server.on('clientError', (_err, socket: net.Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request');
      else socket.destroy();
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.stop();
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.front?.stop();
    await Promise.all(closing);
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

  // ------------------------------------------------------------------ the two listeners

  /** The API listener: the DigitalOcean API, its token endpoint and the Azure DevOps timeline. */
  private async handleApi(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const now = Date.now();
    const url = new URL(req.url ?? '/', this.apiUrl);
    const method = (req.method ?? 'GET').toUpperCase();
    const c = classify(method, url.pathname);
    const rec: RequestRecord = { at: now, method, path: url.pathname + url.search, endpoint: c.endpoint, status: 0 };
    this.requests.push(rec);

    if (c.endpoint === 'timeline') {
      rec.token = bearer(req) ?? basic(req)?.pass;
      if (await this.faults.apply('timeline', rec, res, {})) return;
      return this.timeline.handle(req, res, rec, url);
    }
    if (c.endpoint === 'token') {
      if (await this.faults.apply('token', rec, res, {})) return;
      return this.tokenEndpoint.handle(req, res, rec, url);
    }
    return this.api.handle(req, res, rec, url, c);
  }

  /** The registry front's listener. */
  private async handleFront(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const now = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', `http://${this.registryHost}`);
    const rec: RequestRecord = { at: now, method, path: url.pathname + url.search, endpoint: 'front', status: 0 };
    this.requests.push(rec);
    if (this.frontLatencyMs > 0) await this.timers.delay(this.frontLatencyMs);
    return this.front!.handle(req, res, rec, url);
  }

  // ------------------------------------------------------------------ test controls

  startGc(registry?: string, opts: StartGcOptions = {}): GcRecord {
    return this.gc.startGc(registry, opts);
  }

  finishGc(registry?: string, status = 'succeeded'): void {
    this.gc.finishGc(registry, status);
  }

  activeGc(registry?: string): GcRecord | undefined {
    return this.gc.activeGc(registry);
  }

  gcs(registry?: string): GcRecord[] {
    return this.gc.gcs(registry);
  }

  addPastGcs(registry: string, durationsSeconds: number[]): void {
    this.gc.addPastGcs(registry, durationsSeconds);
  }

  addStaleGc(registry: string, status: string, updatedSecondsAgo: number): GcRecord {
    return this.gc.addStaleGc(registry, status, updatedSecondsAgo);
  }

  setStages(stages: StageSpec[]): void {
    this.timeline.setStages(stages);
  }

  fault(endpoint: EndpointKey, fault: AnyFault): void {
    this.faults.add(endpoint, fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  dockerCredentials(opts: { readWrite?: boolean; expirySeconds?: number } = {}): { username: string; password: string; auth: string } {
    return this.tokenEndpoint.dockerCredentials(opts);
  }

  count(endpoint: EndpointKey | 'other', token?: string): number {
    return this.requests.filter((r) => r.endpoint === endpoint && (token === undefined || r.token === token)).length;
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

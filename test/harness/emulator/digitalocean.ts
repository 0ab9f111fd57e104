// The DigitalOcean registry API on the API listener: registries, garbage collections (start, get,
// list with absolute page links, cancel) and docker credentials, under the new /v2/registries/{name}
// paths and the legacy /v2/registry ones. Bearer API tokens with scopes; a sliding-window rate limit
// per token (over it: 429 with retry-after); DigitalOcean's JSON error shape with x-request-id.
import * as crypto from 'crypto';
import * as http from 'http';
import { URL } from 'url';
import type { FaultInjector } from './faults';
import { Registries, gcRecord } from './gc';
import type { RepoAnswer, Repositories } from './repositories';
import { bearer, doError, isoMillis, isoSeconds, noContent, readBody, send } from './http';
import type { TokenEndpoint } from './token';
import { EndpointKey, GC_TYPES, RequestRecord, TOKEN_SERVICE } from './types';

/** Which endpoint a request on the API listener is for (timeline and token included), and its parts. */
export interface Route {
  endpoint: EndpointKey | 'other';
  route?: string;
  name?: string;
  uuid?: string;
  newPath?: boolean;
  /** The repository (URL-decoded: 'my%2Frepo' is 'my/repo') and the tag or digest of a repository route. */
  repository?: string;
  reference?: string;
}

export function classify(method: string, pathname: string): Route {
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
  return repositoryRoute(rest, name, newPath);
}

/** repositories/{repository}/tags[/{tag}] and repositories/{repository}/digests/{digest}; a '/' in a name must come encoded. */
function repositoryRoute(rest: string, name: string, newPath: boolean): Route {
  const m = /^repositories\/([^/]+)\/(tags|digests)(?:\/([^/]+))?$/.exec(rest);
  if (!m) return { endpoint: 'other' };
  let repository: string, reference: string | undefined;
  try {
    repository = decodeURIComponent(m[1]);
    reference = m[3] === undefined ? undefined : decodeURIComponent(m[3]);
  } catch {
    return { endpoint: 'other' };
  }
  if (m[2] === 'tags' && reference === undefined) return { endpoint: 'tags-list', route: 'tags-list', name, newPath, repository };
  if (reference === undefined) return { endpoint: 'other' };
  const endpoint = m[2] === 'tags' ? 'tag-delete' : 'manifest-delete';
  return { endpoint, route: endpoint, name, newPath, repository, reference };
}

export interface ApiLimits {
  perMinute: number;
  perHour: number;
  /** New /v2/registries/... paths answer 404 (to test the fallback to /v2/registry/...). */
  legacyOnly: boolean;
}

export class DigitalOceanApi {
  private readonly hits = new Map<string, number[]>(); // token -> request times (ms), oldest first

  constructor(
    /** The accepted API tokens and their scopes. */
    private readonly tokens: Map<string, Set<string>>,
    private readonly limits: ApiLimits,
    private readonly registries: Registries,
    private readonly tokenEndpoint: TokenEndpoint,
    private readonly faults: FaultInjector,
    private readonly repositories: Repositories,
    /** Known once the listeners listen. */
    private readonly urls: { apiUrl(): string; registryHost(): string },
  ) {}

  /** Sliding-window rate limit state for a token (does not count). */
  private rateHeaders(token: string | undefined, now: number): Record<string, string> {
    const list = token ? this.prune(token, now) : [];
    const reset = list.length > 0 ? Math.ceil((list[0] + 3600_000) / 1000) : Math.ceil(now / 1000);
    return {
      'ratelimit-limit': String(this.limits.perHour),
      'ratelimit-remaining': String(Math.max(0, this.limits.perHour - list.length)),
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
    if (inMinute >= this.limits.perMinute) {
      const oldest = list[firstInMinute];
      return { retryAfter: Math.max(1, Math.ceil((oldest + 60_000 - now) / 1000)) };
    }
    if (list.length >= this.limits.perHour) return {};
    list.push(now);
    return undefined;
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord, url: URL, c: Route): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const apiToken = bearer(req);
    rec.token = apiToken;
    const rid = crypto.randomUUID();
    const headers = (): Record<string, string> => ({
      ...this.rateHeaders(apiToken && this.tokens.has(apiToken) ? apiToken : undefined, Date.now()),
      'x-request-id': rid,
    });
    const err = (status: number, id: string, message: string, extra: Record<string, string> = {}): void =>
      send(res, rec, status, doError(id, message, rid), { ...headers(), ...extra });

    if (c.endpoint !== 'other' && (await this.faults.apply(c.endpoint, rec, res, headers()))) return;
    if (c.endpoint === 'other' || !c.route) return err(404, 'not_found', 'Your request could not be routed.');
    if (this.limits.legacyOnly && c.newPath) return err(404, 'not_found', 'Your request could not be routed.');

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
    const json = (status: number, body: unknown): void => send(res, rec, status, JSON.stringify(body), headers());

    switch (c.route) {
      case 'registry-legacy':
      case 'registries':
      case 'registry-named': {
        if (method !== 'GET') return notRouted();
        if (!has('registry:read')) return forbidden();
        if (c.route === 'registry-legacy') {
          if (this.registries.names.length > 1)
            return err(
              412,
              'precondition_failed',
              "This API is not supported if you have created multiple registries. Please use '/v2/registries/{registry_name}' instead.",
            );
          return json(200, { registry: this.registryInfo(this.registries.names[0], true) });
        }
        if (c.route === 'registries') {
          const regs = this.registries.names.map((r) => this.registryInfo(r, false));
          return json(200, { registries: regs, total_storage_usage_bytes: regs.reduce((a, r) => a + (r.storage_usage_bytes as number), 0) });
        }
        if (!this.registries.has(c.name!)) return noRegistry();
        return json(200, { registry: this.registryInfo(c.name!, false) });
      }
      case 'credentials': {
        if (method !== 'GET') return notRouted();
        const readWrite = /^(true|1)$/i.test(url.searchParams.get('read_write') ?? '');
        if (!has('registry:read') || (readWrite && !has('registry:update'))) return forbidden();
        if (c.name !== undefined && !this.registries.has(c.name)) return noRegistry();
        const expiry = Number(url.searchParams.get('expiry_seconds') ?? '0');
        if (!Number.isFinite(expiry) || expiry < 0) return err(422, 'unprocessable_entity', 'expiry_seconds must be a non-negative integer');
        const cred = this.tokenEndpoint.dockerCredentials({ readWrite, expirySeconds: Math.floor(expiry) });
        const host = this.urls.registryHost() || TOKEN_SERVICE;
        return json(200, { auths: { [host]: { auth: cred.auth } } });
      }
      case 'gc-start': {
        if (!has('registry:update')) return forbidden();
        if (!this.registries.has(c.name!)) return noRegistry();
        let type = 'unreferenced blobs only';
        const raw = await readBody(req);
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
        if (this.registries.active(c.name!)) return err(409, 'conflict', 'a garbage collection is already active for this registry');
        const gc = this.registries.create(c.name!, type);
        return json(201, { garbage_collection: gcRecord(gc, Date.now()) });
      }
      case 'gc-get': {
        if (method !== 'GET') return notRouted();
        if (!has('registry:read')) return forbidden();
        if (!this.registries.has(c.name!)) return noRegistry();
        const active = this.registries.activeGc(c.name!);
        if (!active) return err(404, 'not_found', 'The resource you requested could not be found.');
        return json(200, { garbage_collection: active });
      }
      case 'gc-list': {
        if (method !== 'GET') return notRouted();
        if (!has('registry:read')) return forbidden();
        if (!this.registries.has(c.name!)) return noRegistry();
        const all = this.registries.gcs(c.name!);
        const pageRaw = url.searchParams.get('page');
        const perRaw = url.searchParams.get('per_page');
        const page = Math.max(1, Math.floor(Number(pageRaw ?? '1')) || 1);
        const per = Math.min(200, Math.max(1, Math.floor(Number(perRaw ?? '20')) || 20));
        const pages = Math.max(1, Math.ceil(all.length / per));
        const body: Record<string, unknown> = { garbage_collections: all.slice((page - 1) * per, page * per) };
        if (pages > 1) {
          const link = (n: number): string => `${this.urls.apiUrl()}${url.pathname}?page=${n}&per_page=${per}`;
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
        if (!this.registries.has(c.name!)) return noRegistry();
        const raw = await readBody(req);
        let cancel = false;
        try {
          cancel = (JSON.parse(raw || '{}') as Record<string, unknown>).cancel === true;
        } catch {
          return err(400, 'bad_request', 'invalid JSON in request body');
        }
        if (!cancel) return err(422, 'unprocessable_entity', 'only {"cancel": true} is supported');
        const cancelled = this.registries.cancel(c.name!, c.uuid);
        if (!cancelled) return err(404, 'not_found', 'The resource you requested could not be found.');
        return json(200, { garbage_collection: cancelled });
      }
      case 'tags-list':
      case 'tag-delete':
      case 'manifest-delete':
        return this.repository(method, c, url, has, (a) => {
          if ('error' in a) return err(a.status, a.error[0], a.error[1]);
          if (a.status === 204) return noContent(res, rec, headers());
          return json(a.status, a.body);
        });
    }
    return notRouted();
  }

  /**
   * The repository routes: registry:read to list, registry:delete to delete; a delete while a GC is
   * active is refused. DigitalOcean documents no status for this (reference sections 5 and 7: "a delete
   * is a write: during GC the registry is read-only"; the token endpoint's refusal is a 401, which on
   * the API would read as a bad token), so the emulator answers 409 Conflict with DigitalOcean's error
   * body: the status DigitalOcean already uses for a request that clashes with the registry's GC state
   * (starting a GC while one is active).
   */
  private async repository(method: string, c: Route, url: URL, has: (s: string) => boolean, answer: (a: RepoAnswer) => void): Promise<void> {
    const forbidden: RepoAnswer = { status: 403, error: ['forbidden', 'You are not authorized to perform this operation'] };
    const notRouted: RepoAnswer = { status: 404, error: ['not_found', 'Your request could not be routed.'] };
    const write = c.route !== 'tags-list';
    if (method !== (write ? 'DELETE' : 'GET')) return answer(notRouted);
    if (!has(write ? 'registry:delete' : 'registry:read')) return answer(forbidden);
    if (!this.registries.has(c.name!)) return answer({ status: 404, error: ['not_found', 'registry does not exist'] });
    if (write && this.registries.active(c.name!)) {
      return answer({ status: 409, error: ['conflict', 'the registry is read-only while a garbage collection is running; try again when it has finished'] });
    }
    if (c.route === 'tag-delete') return answer(await this.repositories.deleteTag(c.name!, c.repository!, c.reference!));
    if (c.route === 'manifest-delete') return answer(await this.repositories.deleteManifest(c.name!, c.repository!, c.reference!));
    const page = Math.max(1, Math.floor(Number(url.searchParams.get('page') ?? '1')) || 1);
    const per = Math.min(200, Math.max(1, Math.floor(Number(url.searchParams.get('per_page') ?? '20')) || 20));
    const link = (n: number): string => `${this.urls.apiUrl()}${url.pathname}?page=${n}&per_page=${per}`;
    return answer(await this.repositories.list(c.name!, c.repository!, page, per, link));
  }

  private registryInfo(name: string, withSubscription: boolean): Record<string, unknown> {
    const created = this.registries.createdAt(name) ?? Date.now();
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
}

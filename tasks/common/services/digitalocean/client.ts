// The DigitalOcean registry API as the workflows use it: registries, garbage collections (start,
// get, list, cancel) and docker credentials, on DigitalOcean's current paths or its older ones.
import { CancelledError, UserError } from '../../platform/errors';
import { ShapeError, UnexpectedAnswerError, stringFieldProblem } from '../../platform/http';
import { DoApi, DoAnswer, DoApiError, DigitalOceanClientOptions, GcAlreadyActiveError, RequestSpec } from './api';
import { DoConnection, REGISTRY_NAME_PATTERN } from './connection';
import { GarbageCollection, gcListOf, normalizeGc, parseDoTime } from './gc';
import { RatePacer } from './pacing';
import {
  DeleteOutcome,
  DeleteRefusedError,
  MANIFEST_DIGEST_PATTERN,
  RepositoryNotFoundError,
  RepositoryTag,
  TAG_PATTERN,
  isRefusalStatus,
  isRepositoryName,
  requireGrammar,
  tagListOf,
} from './repository';

/** links.pages.next is followed at most this many times: a looping or endless list cannot hold a task. */
export const MAX_LIST_PAGES = 20;
/** Tags asked for per page of a repository's tag list. */
export const TAG_PAGE_SIZE = 100;

type PathMode = 'new' | 'legacy';

/**
 * New /v2/registries/{name} paths; the old /v2/registry/{name} ones only for a registry confirmed
 * to exist whose new paths answer 404 (then for the rest of the task).
 */
export class DigitalOceanClient {
  private readonly api: DoApi;
  private readonly pacer: RatePacer;
  private readonly log: (line: string) => void;
  private readonly modes = new Map<string, PathMode>();

  constructor(conn: DoConnection, options: DigitalOceanClientOptions = {}) {
    this.pacer = new RatePacer(options.targetRequestsPerMinute);
    this.api = new DoApi(conn, options, this.pacer);
    this.log = options.log ?? (() => undefined);
  }

  /** HTTP requests actually sent (retries included). */
  get requestCount(): number {
    return this.api.requestCount;
  }

  /** How long to wait before the next poll, given the wanted interval (see RatePacer). */
  pollDelayMs(baseMs: number): number {
    return this.pacer.pollDelayMs(baseMs);
  }

  /** Why the last pollDelayMs was well above the interval asked for ('' when it was not). */
  get pacing(): string {
    return this.pacer.reason;
  }

  private request(spec: RequestSpec, signal?: AbortSignal): Promise<DoAnswer> {
    return this.api.request(spec, signal);
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

  /**
   * Every tag of a repository (`repository` without the registry name, e.g. 'my/app'; it is
   * URL-encoded in the path), each checked by normalizeTag and of the registry and repository asked
   * for; a tag listed twice (pages shifting under a concurrent change) is kept once, the last seen.
   * Follows links.pages.next (its page number only). The whole list or an error, never part of it:
   * a next link back to a page already read, or more than MAX_LIST_PAGES pages, is an
   * UnexpectedAnswerError. Throws RepositoryNotFoundError only for DigitalOcean's own JSON 404 on a
   * registry confirmed to exist; any other 404 (a proxy's page) is an unexpected answer (retried,
   * then failed), never "no such repository".
   */
  async listTags(registry: string, repository: string, signal?: AbortSignal): Promise<RepositoryTag[]> {
    requireGrammar('repository name', repository, isRepositoryName);
    const what = `GET tags of repository ${repository}`;
    const check = (d: any) => void tagListOf(d, what, registry, repository);
    const make = (b: string, page: number): RequestSpec => ({
      method: 'GET',
      path: `${b}/repositories/${encodeURIComponent(repository)}/tags`,
      params: { per_page: TAG_PAGE_SIZE, page },
      scope: 'registry:read',
      accept: [404],
      check,
    });
    const notFound = (a: DoAnswer) => new RepositoryNotFoundError(registry, repository, a.error?.doMessage ?? '', a.requestId);
    let answer = await this.onRegistry(registry, (b) => make(b, 1), signal);
    if (answer.status === 404) throw notFound(answer);
    const base = this.base(registry, this.modes.get(registry) ?? 'new');
    const byName = new Map<string, RepositoryTag>();
    const seen = new Set<number>([1]);
    for (let pages = 1; ; pages++) {
      const items = tagListOf(answer.data, what, registry, repository);
      for (const t of items) byName.set(t.tag, t);
      const next = nextPage(answer.data?.links?.pages?.next);
      if (items.length === 0 || next === undefined) break;
      if (seen.has(next))
        throw new UnexpectedAnswerError(`DigitalOcean API ${what}: links.pages.next goes back to page ${next}; the list cannot be read whole`);
      if (pages >= MAX_LIST_PAGES) throw new UnexpectedAnswerError(`DigitalOcean API ${what}: more than ${MAX_LIST_PAGES} pages of ${TAG_PAGE_SIZE} tags`);
      seen.add(next);
      answer = await this.request(make(base, next), signal);
      if (answer.status === 404) throw notFound(answer);
    }
    return [...byName.values()];
  }

  /**
   * DELETE .../repositories/{repository}/tags/{tag}: the tag goes, its manifest stays (untagged, for
   * the next GC of untagged manifests). 'deleted' on 2xx, 'already-gone' on DigitalOcean's own 404;
   * DeleteRefusedError when DigitalOcean refuses (e.g. read-only during a GC); 403: a UserError naming
   * the registry:delete scope.
   */
  async deleteTag(registry: string, repository: string, tag: string, signal?: AbortSignal): Promise<DeleteOutcome> {
    requireGrammar('repository name', repository, isRepositoryName);
    requireGrammar('tag', tag, (v) => TAG_PATTERN.test(v));
    return this.deleteIn(registry, repository, `tags/${encodeURIComponent(tag)}`, `tag ${repository}:${tag} in registry ${registry}`, tag, signal);
  }

  /** DELETE .../repositories/{repository}/digests/{digest}: the manifest and every tag on it; results as deleteTag. */
  async deleteManifest(registry: string, repository: string, digest: string, signal?: AbortSignal): Promise<DeleteOutcome> {
    requireGrammar('repository name', repository, isRepositoryName);
    requireGrammar('manifest digest', digest, (v) => MANIFEST_DIGEST_PATTERN.test(v));
    return this.deleteIn(registry, repository, `digests/${digest}`, `manifest ${repository}@${digest} in registry ${registry}`, digest, signal);
  }

  private async deleteIn(registry: string, repository: string, sub: string, what: string, target: string, signal?: AbortSignal): Promise<DeleteOutcome> {
    try {
      const a = await this.onRegistry(
        registry,
        (b) => ({
          method: 'DELETE',
          path: `${b}/repositories/${encodeURIComponent(repository)}/${sub}`,
          scope: 'registry:delete',
          accept: [403, 404],
          noContent: true,
        }),
        signal,
      );
      // DigitalOcean's own 403 to a delete: the token may read but not delete (a refusal with a
      // remedy, not a failure of the run).
      if (a.status === 403 && a.error) throw new DeleteRefusedError(what, a.error, target, 'the DigitalOcean token lacks the registry:delete scope');
      return a.status === 404 ? 'already-gone' : 'deleted';
    } catch (err) {
      // Only DigitalOcean's own body is a refusal; another page with the same status stays a failure.
      if (err instanceof DoApiError && err.wellFormed && isRefusalStatus(err.status)) throw new DeleteRefusedError(what, err, target);
      throw err;
    }
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
    if (!a.data || typeof a.data.auths !== 'object' || a.data.auths === null || Array.isArray(a.data.auths)) {
      throw new ShapeError('DigitalOcean API docker-credentials answered', 'auths', a.data?.auths === undefined ? 'is missing' : 'is not an object');
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
  const name: unknown = data?.registry?.name;
  const why = stringFieldProblem(name, 63, (v) => REGISTRY_NAME_PATTERN.test(v), "a registry name in DigitalOcean's grammar (a-z, 0-9 and -)");
  if (why !== undefined) throw new ShapeError(`DigitalOcean API ${what} answered`, 'registry.name', why);
  return name as string;
}

import * as crypto from 'crypto';
import * as net from 'net';
import {
  BodyKind,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  HttpFailure,
  HttpResponse,
  HttpStatusError,
  UnexpectedAnswerError,
  classifyHttpFailure,
  jsonBody,
  request,
  retryAfterMs,
} from '../platform/http';
import { CancelledError, UserError } from '../platform/errors';
import { MEDIA_TYPE, addSecret, quote } from '../platform/output';
import { FailureClass } from '../platform/retry';

/**
 * Image references and registry-exact digests (sign the digest the
 * registry reports, never one computed from a local re-serialisation, never
 * manifests[0] of an index).
 */

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export const MANIFEST_ACCEPT = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerList, MEDIA_TYPES.dockerManifest].join(', ');

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerList;
}

export interface ImageReference {
  /** As typed by the user. */
  original: string;
  /** Registry host as written in the reference (docker.io for Docker Hub). */
  registry: string;
  /** Repository path without the registry. */
  repository: string;
  tag?: string;
  digest?: string;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPO_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*$`);
const IPV4_RE = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
/** Docker's limit on the whole name (registry and repository, without tag or digest). */
export const MAX_NAME_LENGTH = 255;

/**
 * A registry host as the reference grammar allows it: domain components, an IPv4 address or a
 * bracketed IPv6 address, with an optional port 1 to 65535. Undefined when it fits; else why not.
 */
export function hostProblem(host: string): string | undefined {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return 'the registry host is not host[:port]';
  const [, name, port] = m;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return 'the registry port must be 1 to 65535';
  if (name.startsWith('[')) return net.isIPv6(name.slice(1, -1)) ? undefined : 'the registry host is not a valid [IPv6] address';
  if (/^[\d.]+$/.test(name)) return IPV4_RE.test(name) ? undefined : 'the registry host is not a valid IPv4 address';
  return DOMAIN_RE.test(name) ? undefined : 'the registry host is not a valid domain name';
}

/**
 * Parses `[registry/]repo[:tag][@sha256:…]` to the reference grammar, before any network call: a
 * value that does not fit (or that cosign would read as a flag: anything starting with `-`) is
 * refused in one line that names the input and quotes the value.
 */
export function parseImageReference(ref: string, inputName = 'images'): ImageReference {
  const original = ref.trim();
  const bad = (why: string) => new UserError(`Input '${inputName}': '${quote(original)}' is not a valid image reference (${why}).`);
  if (!original || /\s/.test(original)) throw bad('empty or contains spaces');
  if (original.startsWith('-')) throw bad("it starts with '-', which cosign would read as a flag");
  let rest = original;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad('digest must be sha256: and 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash && !rest.slice(lastSlash + 1).startsWith('[')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`tag '${quote(tag, 40)}' is not valid`);
  }
  let registry = 'docker.io';
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // The first component is a registry when it has a dot or a colon (or brackets), or is localhost.
    if (/[.:[]/.test(first) || first === 'localhost') {
      registry = first;
      repository = rest.slice(slash + 1);
      const why = hostProblem(registry);
      if (why) throw bad(why);
    }
  }
  if (!REPO_RE.test(repository)) throw bad(`repository '${quote(repository, 60)}' is not valid (lowercase path components separated by '/')`);
  if (rest.length > MAX_NAME_LENGTH) throw bad(`the name is longer than ${MAX_NAME_LENGTH} characters`);
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (!tag && !digest) tag = 'latest';
  return { original, registry, repository, tag, digest };
}

/** The repository as cosign should see it (registry included). */
export function repoName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The host the registry API answers on (Docker Hub's API host differs from its name). */
export function apiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || /^127\./.test(h) || h === '::1';
}

export interface BasicCredentials {
  username: string;
  password: string;
}

/** Looks up credentials for a registry host (undefined: anonymous). */
export type CredentialLookup = (registryHost: string) => BasicCredentials | undefined;

export interface ResolveOptions {
  credentials?: CredentialLookup;
  allowHttp: boolean;
  allowInsecure: boolean;
  timeoutMs?: number;
  /** Aborts the request (an attempt deadline or the job's cancellation). */
  signal?: AbortSignal;
  /** The job's own signal: when it fired, an abort is a cancellation, else a (transient) timeout. */
  cancelSignal?: AbortSignal;
  log?: (line: string) => void;
  /**
   * One repository's session shared by several requests (newRegistrySession): the scheme found and
   * the tokens obtained, so many tags of one repository cost one token exchange, not one each.
   */
  session?: RegistrySessionState;
}

/** What requests to one repository share: the scheme that answered, and a token per set of actions. */
export interface RegistrySessionState {
  scheme?: 'https' | 'http';
  authorization: Map<string, string>;
}

/** A fresh session for one repository (pass it as ResolveOptions.session to every request to it). */
export function newRegistrySession(): RegistrySessionState {
  return { authorization: new Map() };
}

/** The session of the reference's repository in `sessions`, made on first use: one per repository. */
export function repositorySession(sessions: Map<string, RegistrySessionState>, ref: ImageReference): RegistrySessionState {
  const repo = repoName(ref);
  let session = sessions.get(repo);
  if (!session) sessions.set(repo, (session = newRegistrySession()));
  return session;
}

export interface PlatformManifest {
  digest: string;
  mediaType: string;
  platform: string;
}

export interface ResolvedImage {
  ref: ImageReference;
  /** `registry/repo@sha256:…`, what cosign runs on. */
  pinned: string;
  digest: string;
  mediaType: string;
  isIndex: boolean;
  /** The index's own platform manifests, in registry order (only for indexes). */
  platforms: PlatformManifest[];
  /** 'head' when Docker-Content-Digest answered, 'get' when the returned bytes were hashed. */
  source: 'head' | 'get';
}

/** What only a registry knows about a failure; everything else classifies through classifyHttpFailure. */
export type RegistryFailureReason = 'manifest-unknown' | 'auth' | 'digest-mismatch' | 'tag-moved' | 'config' | 'refused';

/** A registry answer with a meaning only a registry gives it (the distribution spec's error codes, digests). */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly reason: RegistryFailureReason,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

const CREDENTIALS_HINT = 'check the registry credentials (dockerRegistryConnection, useDigitalOceanCredentials or the agent docker config)';

/**
 * The one classifier for registry and token failures: what only a registry knows (MANIFEST_UNKNOWN,
 * 401/403, digests that disagree), then classifyHttpFailure for statuses, network faults and answers
 * of the wrong shape.
 */
export function classifyRegistryFailure(err: unknown): FailureClass {
  if (err instanceof RegistryError) {
    switch (err.reason) {
      case 'manifest-unknown':
        return { kind: 'permanent', reason: 'manifest-unknown', hint: 'was the image pushed to this registry and repository?' };
      case 'auth':
        return { kind: 'permanent', reason: `registry-${err.status ?? 'auth'}`, hint: CREDENTIALS_HINT };
      case 'tag-moved':
        return { kind: 'transient', reason: 'tag-moved' };
      default:
        return { kind: 'permanent', reason: `registry-${err.reason}` };
    }
  }
  return classifyHttpFailure(err);
}

/**
 * The longest WWW-Authenticate challenge read: a real one (realm, service, scope) is a few hundred
 * characters, and the parameter scan costs time quadratic in a run of letters without '='.
 */
export const MAX_CHALLENGE_LENGTH = 2048;

/** A registry's challenge (scheme and parameters); none for a missing or overlong header, so the 401 stands. */
export function parseChallenge(header: string | undefined): { scheme: string; params: Record<string, string> } | undefined {
  if (!header || header.length > MAX_CHALLENGE_LENGTH) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]))) params[p[1].toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme: m[1].toLowerCase(), params };
}

function basicHeader(c: BasicCredentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

function sha256Digest(bytes: Buffer): string {
  return 'sha256:' + crypto.createHash('sha256').update(bytes).digest('hex');
}

/** A registry token: printable ASCII (it goes into a header) of a sane size. */
const TOKEN_RE = /^[\x21-\x7e]{1,16384}$/;

/**
 * A small registry client for one repository: scheme selection, the Docker V2
 * Bearer challenge (Basic credentials to the realm, pull scope), nothing else.
 * Every request carries the attempt's signal and deadlines no longer than the attempt.
 */
type RegistryMethod = 'HEAD' | 'GET' | 'DELETE';

class RegistrySession {
  private readonly state: RegistrySessionState;
  private readonly host: string;

  constructor(
    private readonly ref: ImageReference,
    private readonly options: ResolveOptions,
  ) {
    this.host = apiHost(ref.registry);
    this.state = options.session ?? newRegistrySession();
  }

  private async exchange(method: RegistryMethod, url: string, headers: Record<string, string>, kind: BodyKind): Promise<HttpResponse> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    try {
      return await request({
        method,
        url,
        headers,
        kind,
        signal: this.options.signal,
        timeoutMs,
        idleTimeoutMs: Math.min(timeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
        insecureTls: this.options.allowInsecure,
      });
    } catch (err) {
      this.throwIfAborted();
      throw err;
    }
  }

  /** The job's cancellation is a cancellation; the attempt's own deadline is a (transient) timeout. */
  private throwIfAborted(): void {
    if (this.options.cancelSignal?.aborted) throw new CancelledError();
    if (this.options.signal?.aborted) {
      if (!this.options.cancelSignal) throw new CancelledError();
      throw new HttpFailure(`registry ${this.host} did not answer before the attempt deadline (attemptTimeoutSeconds)`, 'timeout', true);
    }
  }

  private schemes(): Array<'https' | 'http'> {
    if (this.state.scheme) return [this.state.scheme];
    if (!this.options.allowHttp) return ['https'];
    return isLoopbackHost(this.host) ? ['http', 'https'] : ['https', 'http'];
  }

  private async send(method: RegistryMethod, path: string, headers: Record<string, string>, kind: BodyKind = 'manifest'): Promise<HttpResponse> {
    // When every scheme fails, the preferred scheme's failure is the one reported (the fallback's
    // is usually only "wrong protocol").
    let firstErr: unknown;
    for (const scheme of this.schemes()) {
      try {
        const res = await this.exchange(method, `${scheme}://${this.host}${path}`, headers, kind);
        this.state.scheme = scheme;
        return res;
      } catch (err) {
        firstErr ??= err;
      }
    }
    const lastErr = firstErr;
    if (lastErr instanceof HttpFailure) throw new HttpFailure(`cannot reach registry ${this.host}: ${lastErr.message}`, lastErr.reason, lastErr.transient);
    throw lastErr;
  }

  private async fetchToken(challenge: Record<string, string>, actions: string): Promise<void> {
    const realm = challenge['realm'];
    if (!realm) throw new UnexpectedAnswerError(`registry ${this.host} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UnexpectedAnswerError(`registry ${this.host} sent a Bearer challenge whose realm is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new UnexpectedAnswerError(`registry ${this.host} points its token realm at a ${quote(url.protocol, 20)} URL`);
    if (challenge['service']) url.searchParams.set('service', challenge['service']);
    // The scope the registry asks for, when it is for this repository; else the one this request needs.
    const asked = challenge['scope'] ?? '';
    const scope =
      asked.startsWith(`repository:${this.ref.repository}:`) && /^repository:[a-z0-9._/-]+:[a-z*]+(,[a-z*]+)*$/.test(asked)
        ? asked
        : `repository:${this.ref.repository}:${actions}`;
    url.searchParams.set('scope', scope);
    if (url.protocol === 'http:' && !this.options.allowHttp && !isLoopbackHost(url.host)) {
      throw new RegistryError(`registry ${this.host} points its token realm at plain http (${quote(url.origin)}); set allowHttpRegistry to allow it`, 'config');
    }
    const where = `token request to ${quote(url.origin + url.pathname)}`;
    const creds = this.options.credentials?.(this.ref.registry);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (creds) headers['Authorization'] = basicHeader(creds);
    const res = await this.exchange('GET', url.toString(), headers, 'token');
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError(`${where} (scope ${scope}) answered ${res.status}`, 'auth', res.status);
    }
    if (res.status !== 200) throw new HttpStatusError(`${where} answered ${res.status}`, res.status, retryAfterMs(res.headers));
    const body = jsonBody(res, where) as { token?: unknown; access_token?: unknown } | null;
    const token = [body?.token, body?.access_token].find((t) => typeof t === 'string' && t !== '');
    // A 200 without a usable token is a glitch of the token service, not a verdict: worth another attempt.
    if (typeof token !== 'string' || !TOKEN_RE.test(token)) throw new UnexpectedAnswerError(`${where} answered 200 without a usable token`);
    addSecret(token);
    this.state.authorization.set(actions, `Bearer ${token}`);
  }

  /** One manifest request, answering the auth challenge once. */
  manifest(method: 'HEAD' | 'GET', reference: string): Promise<HttpResponse> {
    return this.call(method, `/v2/${this.ref.repository}/manifests/${reference}`, 'pull');
  }

  /**
   * One request to the repository, answering the auth challenge once with a token for `actions`
   * (`pull`, or `delete` for a manifest delete).
   */
  async call(method: RegistryMethod, path: string, actions: string, kind: BodyKind = 'manifest'): Promise<HttpResponse> {
    for (let round = 0; ; round++) {
      const headers: Record<string, string> = { Accept: kind === 'manifest' ? MANIFEST_ACCEPT : 'application/json' };
      const authorization = this.state.authorization.get(actions);
      if (authorization) headers['Authorization'] = authorization;
      const res = await this.send(method, path, headers, kind);
      if (res.status !== 401 || round > 0) return res;
      const challenge = parseChallenge(res.headers['www-authenticate']);
      if (challenge?.scheme === 'bearer') await this.fetchToken(challenge.params, actions);
      else if (challenge?.scheme === 'basic') {
        const creds = this.options.credentials?.(this.ref.registry);
        if (!creds) return res;
        this.state.authorization.set(actions, basicHeader(creds));
      } else return res;
    }
  }
}

function where(ref: ImageReference, reference: string): string {
  return `${ref.registry}/${ref.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
}

/** The distribution spec's error codes, from a JSON error body only (an HTML error page has none). */
function errorCodes(res: HttpResponse): string[] {
  if (res.mediaType !== 'application/json' && !res.mediaType.endsWith('+json')) return [];
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { errors?: Array<{ code?: unknown }> };
    return Array.isArray(body?.errors) ? body.errors.map((e) => e?.code).filter((c): c is string => typeof c === 'string' && /^[A-Z_]{1,64}$/.test(c)) : [];
  } catch {
    return [];
  }
}

/**
 * A manifest answer that is not 200. "Does not exist" is concluded only from a GET whose JSON error
 * body says MANIFEST_UNKNOWN or NAME_UNKNOWN; a bare or HTML 404 (a proxy, a wrong path) is an
 * unexpected answer, retried.
 */
function describeFailure(ref: ImageReference, reference: string, method: 'HEAD' | 'GET', res: HttpResponse): Error {
  const codes = errorCodes(res);
  const at = where(ref, reference);
  const code = codes.length ? ` ${codes.join(',')}` : '';
  if (res.status === 404) {
    if (method === 'GET' && codes.some((c) => c === 'MANIFEST_UNKNOWN' || c === 'NAME_UNKNOWN')) {
      return new RegistryError(
        `${at}: ${codes.join(',')} (the registry has no such tag or digest; was the image pushed to this registry and repository?)`,
        'manifest-unknown',
        404,
      );
    }
    return new UnexpectedAnswerError(`${at}: registry answered 404 without a MANIFEST_UNKNOWN error body (${res.mediaType || 'no content type'})`);
  }
  if (res.status === 401 || res.status === 403)
    return new RegistryError(`${at}: registry answered ${res.status}${code} (${CREDENTIALS_HINT})`, 'auth', res.status);
  return new HttpStatusError(`${at}: registry answered ${res.status}${code}`, res.status, retryAfterMs(res.headers));
}

const ACCEPTED_MEDIA_TYPES: readonly string[] = Object.values(MEDIA_TYPES);

/**
 * The media type of a 200 manifest answer, fail closed: the Content-Type must fit RFC 6838 and be one
 * of the types asked for in Accept. Undefined when the registry sent none (the body then decides).
 */
function headerMediaType(ref: ImageReference, res: HttpResponse): string | undefined {
  if (res.mediaType === '') return undefined;
  if (!MEDIA_TYPE.test(res.mediaType) || !ACCEPTED_MEDIA_TYPES.includes(res.mediaType)) {
    throw new UnexpectedAnswerError(`${ref.original}: the registry answered 200 with content type '${quote(res.mediaType, 60)}', not a manifest media type`);
  }
  return res.mediaType;
}

/** Docker-Content-Digest when it fits the digest grammar; anything else is ignored (the body is hashed). */
function headerDigest(res: HttpResponse): string | undefined {
  const d = (res.headers['docker-content-digest'] ?? '').trim();
  return DIGEST_RE.test(d) ? d : undefined;
}

interface ManifestDoc {
  mediaType: string;
  platforms: PlatformManifest[];
}

/**
 * Refuses a 200 whose body is no manifest (a proxy's error page, a truncated answer, other JSON):
 * hashing it would publish a digest the registry does not have. Returns its media type.
 */
function readManifestBody(ref: ImageReference, body: Buffer, fromHeader: string | undefined): ManifestDoc {
  const refuse = (why: string) =>
    new UnexpectedAnswerError(`${ref.original}: the registry answered 200 with a body that is not a manifest (${why}, ${body.length} bytes)`);
  let doc: { schemaVersion?: unknown; mediaType?: unknown; manifests?: unknown; layers?: unknown; config?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw refuse('not JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || doc.schemaVersion !== 2) throw refuse('no schemaVersion 2');
  const own = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (own !== undefined && !ACCEPTED_MEDIA_TYPES.includes(own)) throw refuse(`mediaType '${quote(own, 60)}'`);
  if (own !== undefined && fromHeader !== undefined && own !== fromHeader) throw refuse('its mediaType differs from the Content-Type');
  const mediaType = fromHeader ?? own;
  if (!mediaType) throw refuse('no media type in the Content-Type or the body');
  if (isIndexMediaType(mediaType) ? !Array.isArray(doc.manifests) : !Array.isArray(doc.layers) || typeof doc.config !== 'object') {
    throw refuse(`not shaped as ${mediaType}`);
  }
  return { mediaType, platforms: isIndexMediaType(mediaType) ? parsePlatforms(doc.manifests as unknown[]) : [] };
}

function parsePlatforms(manifests: unknown[]): PlatformManifest[] {
  const list = manifests as Array<{ digest?: unknown; mediaType?: unknown; platform?: { os?: unknown; architecture?: unknown; variant?: unknown } } | null>;
  const word = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(v) ? v : undefined);
  return list
    .filter((m) => m && typeof m.digest === 'string' && DIGEST_RE.test(m.digest))
    .map((m) => ({
      digest: m!.digest as string,
      mediaType: typeof m!.mediaType === 'string' && MEDIA_TYPE.test(m!.mediaType) ? m!.mediaType : '',
      platform: m!.platform
        ? [word(m!.platform.os), word(m!.platform.architecture), word(m!.platform.variant)].filter(Boolean).join('/') || 'unknown'
        : 'unknown',
    }));
}

/**
 * Asks the registry which digest a reference has. HEAD first (Docker-Content-Digest);
 * a GET whose exact bytes are hashed when the header is missing, and always for an
 * index (its platform list is logged and used by `recursive`).
 */
export async function resolveImage(ref: ImageReference, options: ResolveOptions): Promise<ResolvedImage> {
  const session = new RegistrySession(ref, options);
  const reference = ref.digest ?? ref.tag!;
  const head = await session.manifest('HEAD', reference);
  let digest: string | undefined;
  let mediaType: string | undefined;
  let source: 'head' | 'get' = 'head';
  let platforms: PlatformManifest[] = [];
  if (head.status === 200) {
    digest = headerDigest(head);
    mediaType = headerMediaType(ref, head);
  } else if (![400, 404, 405, 501].includes(head.status)) {
    // Registries that refuse HEAD get a GET, and a 404 to a HEAD (no body) is confirmed by a GET.
    throw describeFailure(ref, reference, 'HEAD', head);
  }
  if (!digest || !mediaType || isIndexMediaType(mediaType)) {
    const get = await session.manifest('GET', reference);
    if (get.status !== 200) throw describeFailure(ref, reference, 'GET', get);
    const doc = readManifestBody(ref, get.body, headerMediaType(ref, get));
    const hashed = sha256Digest(get.body);
    const header = headerDigest(get);
    if (header && header !== hashed) {
      throw new RegistryError(
        `${ref.original}: the registry's Docker-Content-Digest (${header}) does not match the sha256 of the bytes it returned (${hashed})`,
        'digest-mismatch',
      );
    }
    if (!digest) {
      digest = hashed;
      source = 'get';
    }
    if (digest !== hashed)
      throw new RegistryError(`${ref.original}: HEAD reported ${digest} but GET returned bytes hashing to ${hashed} (did the tag move?)`, 'tag-moved');
    mediaType = doc.mediaType;
    platforms = doc.platforms;
  }
  if (ref.digest && digest !== ref.digest) {
    throw new RegistryError(`${ref.original}: the registry reports ${digest} for this digest reference`, 'digest-mismatch');
  }
  const isIndex = isIndexMediaType(mediaType);
  const resolved: ResolvedImage = { ref, pinned: `${repoName(ref)}@${digest}`, digest, mediaType, isIndex, platforms, source };
  options.log?.(
    `${ref.original} → ${resolved.pinned} (${mediaType}` +
      (isIndex ? `; index of ${platforms.length} platform manifest(s): ${platforms.map((p) => p.platform).join(', ')}` : '') +
      `; digest from ${source === 'head' ? 'Docker-Content-Digest' : 'sha256 of the returned bytes'})`,
  );
  return resolved;
}

/** Tags asked for per page of a repository's tag list. */
export const TAG_PAGE_SIZE = 1000;
/** The most pages of a tag list read: a list longer than this is an error, never taken as whole. */
export const MAX_TAG_PAGES = 100;

/** Runs one registry request with its caller's deadlines and retries (one attempt per call of `op`). */
export type RegistryCaller = <T>(op: (options: ResolveOptions) => Promise<T>) => Promise<T>;

/**
 * The `last` tag of a tags/list `Link: <...>; rel="next"` header, or undefined when there is no next
 * page. Only `last` is taken from it: the next request goes to our own path on the same registry,
 * never to a host or path an answer named.
 */
function nextTagPage(link: string | undefined, at: string): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]*)>\s*;[^,]*\brel="?next"?/i.exec(link);
  if (!m) return undefined;
  let last: string | null;
  try {
    last = new URL(m[1], 'http://placeholder.invalid').searchParams.get('last');
  } catch {
    last = null;
  }
  if (last === null || !TAG_RE.test(last)) throw new UnexpectedAnswerError(`${at}: tags/list answered a next-page link without a valid 'last' tag`);
  return last;
}

/**
 * Every tag of the image's repository: `GET /v2/<name>/tags/list`, followed through every
 * `Link: rel="next"` page (at most MAX_TAG_PAGES, each page capped like any API answer, each one
 * request through `call`). A repository the registry does not know (NAME_UNKNOWN) has no tags.
 */
export async function listTags(ref: ImageReference, call: RegistryCaller): Promise<string[]> {
  const at = `${ref.registry}/${ref.repository}`;
  const all = new Set<string>();
  let last: string | undefined;
  for (let page = 1; ; page++) {
    const path = `/v2/${ref.repository}/tags/list?n=${TAG_PAGE_SIZE}${last === undefined ? '' : `&last=${encodeURIComponent(last)}`}`;
    const answer = await call(async (o) => {
      const res = await new RegistrySession(ref, o).call('GET', path, 'pull', 'apiJson');
      if (res.status === 404 && errorCodes(res).includes('NAME_UNKNOWN')) return { tags: [] as string[], next: undefined };
      if (res.status !== 200) throw describeFailure(ref, 'tags/list', 'GET', res);
      const body = jsonBody(res, `${at} tags/list`) as { tags?: unknown } | null;
      const tags = body?.tags ?? [];
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && TAG_RE.test(t))) {
        throw new UnexpectedAnswerError(`${at}: tags/list answered a tags list out of grammar`);
      }
      return { tags: tags as string[], next: nextTagPage(res.headers['link'], at) };
    });
    const before = all.size;
    for (const t of answer.tags) all.add(t);
    if (answer.next === undefined) return [...all];
    if (all.size === before || answer.next === last) throw new UnexpectedAnswerError(`${at}: tags/list pages do not advance; the list cannot be read whole`);
    if (page >= MAX_TAG_PAGES)
      throw new RegistryError(
        `${at} lists more than ${MAX_TAG_PAGES} pages of ${TAG_PAGE_SIZE} tags: which of them point at a digest cannot be checked`,
        'config',
      );
    last = answer.next;
  }
}

/**
 * `DELETE /v2/<name>/manifests/<digest>`: 'deleted' (202 or 200), 'already-gone' (the registry's own
 * MANIFEST_UNKNOWN); a registry that does not delete (405 UNSUPPORTED, 403 DENIED) is a RegistryError
 * 'refused' naming its answer. A delete by digest removes every tag that points at the manifest.
 */
export async function deleteManifestByDigest(ref: ImageReference, digest: string, options: ResolveOptions): Promise<'deleted' | 'already-gone'> {
  const session = new RegistrySession(ref, options);
  const res = await session.call('DELETE', `/v2/${ref.repository}/manifests/${digest}`, 'delete');
  if (res.status === 202 || res.status === 200 || res.status === 204) return 'deleted';
  const codes = errorCodes(res);
  if (res.status === 404 && codes.includes('MANIFEST_UNKNOWN')) return 'already-gone';
  if (res.status === 405 || res.status === 403 || codes.includes('UNSUPPORTED') || codes.includes('DENIED')) {
    throw new RegistryError(
      `${where(ref, digest)}: the registry refused the delete (${res.status}${codes.length ? ` ${codes.join(',')}` : ''})`,
      'refused',
      res.status,
    );
  }
  throw describeFailure(ref, digest, 'GET', res);
}

import * as crypto from 'crypto';
import { BodyKind, HttpFailure, HttpResponse, request } from './http';
import { CancelledError, UserError, errorMessage } from './errors';

/**
 * Image references and registry-exact digests (seed 002: sign the digest the
 * registry reports, never one computed from a local re-serialisation, never
 * manifests[0] of an index).
 */

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.dockerManifest,
].join(', ');

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
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Parses `[registry/]repo[:tag][@sha256:…]` with Docker's rules for the registry part. */
export function parseImageReference(ref: string, inputName = 'images'): ImageReference {
  const original = ref.trim();
  const bad = (why: string) => new UserError(`Input '${inputName}': '${original}' is not a valid image reference (${why}).`);
  if (!original || /\s/.test(original)) throw bad('empty or contains spaces');
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
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`tag '${tag}' is not valid`);
  }
  let registry = 'docker.io';
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (!REPO_RE.test(repository)) throw bad(`repository '${repository}' is not valid`);
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

/** An HTTP failure talking to a registry, with the status for classification. */
export class RegistryError extends Error {
  constructor(message: string, readonly status?: number, readonly transient = false) {
    super(message);
    this.name = 'RegistryError';
  }
}

function parseChallenge(header: string | undefined): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
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

function headerValue(res: HttpResponse, name: string): string | undefined {
  return res.headers[name.toLowerCase()];
}

function mediaTypeOf(res: HttpResponse): string {
  return (headerValue(res, 'content-type') ?? '').split(';')[0].trim();
}

/**
 * A small registry client for one repository: scheme selection, the Docker V2
 * Bearer challenge (Basic credentials to the realm, pull scope), nothing else.
 */
class RegistrySession {
  private scheme: 'https' | 'http' | undefined;
  private authorization: string | undefined;
  private readonly host: string;

  constructor(private readonly ref: ImageReference, private readonly options: ResolveOptions) {
    this.host = apiHost(ref.registry);
  }

  private async exchange(method: 'HEAD' | 'GET', url: string, headers: Record<string, string>, kind: BodyKind): Promise<HttpResponse> {
    return request({
      method,
      url,
      headers,
      kind,
      signal: this.options.signal,
      timeoutMs: this.options.timeoutMs ?? 30_000,
      insecureTls: this.options.allowInsecure,
    });
  }

  private throwIfAborted(): void {
    if (this.options.cancelSignal?.aborted) throw new CancelledError();
    if (this.options.signal?.aborted) {
      if (!this.options.cancelSignal) throw new CancelledError();
      throw new RegistryError(`registry ${this.host} did not answer before the attempt deadline`, undefined, true);
    }
  }

  private schemes(): Array<'https' | 'http'> {
    if (this.scheme) return [this.scheme];
    if (!this.options.allowHttp) return ['https'];
    return isLoopbackHost(this.host) ? ['http', 'https'] : ['https', 'http'];
  }

  private async send(method: 'HEAD' | 'GET', path: string, headers: Record<string, string>): Promise<HttpResponse> {
    let lastErr: unknown;
    for (const scheme of this.schemes()) {
      const url = `${scheme}://${this.host}${path}`;
      try {
        const res = await this.exchange(method, url, headers, 'manifest');
        this.scheme = scheme;
        return res;
      } catch (err) {
        this.throwIfAborted();
        lastErr = err;
      }
    }
    const msg = errorMessage(lastErr);
    throw new RegistryError(`cannot reach registry ${this.host}: ${msg}`, undefined, !(lastErr instanceof HttpFailure) || lastErr.transient);
  }

  private async fetchToken(challenge: Record<string, string>): Promise<void> {
    const realm = challenge['realm'];
    if (!realm) throw new RegistryError(`registry ${this.host} sent a Bearer challenge without a realm`);
    const url = new URL(realm);
    if (challenge['service']) url.searchParams.set('service', challenge['service']);
    url.searchParams.set('scope', `repository:${this.ref.repository}:pull`);
    if (url.protocol === 'http:' && !this.options.allowHttp && !isLoopbackHost(url.host)) {
      throw new RegistryError(`registry ${this.host} points its token realm at plain http (${url.origin}); set allowHttpRegistry to allow it`);
    }
    const creds = this.options.credentials?.(this.ref.registry);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (creds) headers['Authorization'] = basicHeader(creds);
    let res: HttpResponse;
    try {
      res = await this.exchange('GET', url.toString(), headers, 'token');
    } catch (err) {
      this.throwIfAborted();
      throw new RegistryError(`token request to ${url.origin}${url.pathname} failed: ${errorMessage(err)}`, undefined, true);
    }
    if (res.status !== 200) {
      throw new RegistryError(
        `token request to ${url.origin}${url.pathname} (scope repository:${this.ref.repository}:pull) answered ${res.status}`,
        res.status,
        res.status === 429 || res.status >= 500,
      );
    }
    let token: string | undefined;
    try {
      const body = JSON.parse(res.body.toString('utf8')) as { token?: string; access_token?: string };
      token = body.token || body.access_token;
    } catch {
      /* handled below */
    }
    // A 200 without a token is a glitch of the token service, not a verdict: worth another attempt.
    if (!token) throw new RegistryError(`token endpoint ${url.origin}${url.pathname} returned no token`, undefined, true);
    this.authorization = `Bearer ${token}`;
  }

  /** One manifest request, answering the auth challenge once. */
  async manifest(method: 'HEAD' | 'GET', reference: string): Promise<HttpResponse> {
    const path = `/v2/${this.ref.repository}/manifests/${reference}`;
    for (let round = 0; round < 2; round++) {
      const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
      if (this.authorization) headers['Authorization'] = this.authorization;
      const res = await this.send(method, path, headers);
      if (res.status !== 401 || round > 0) return res;
      const challenge = parseChallenge(headerValue(res, 'www-authenticate'));
      if (challenge?.scheme === 'bearer') await this.fetchToken(challenge.params);
      else if (challenge?.scheme === 'basic') {
        const creds = this.options.credentials?.(this.ref.registry);
        if (!creds) return res;
        this.authorization = basicHeader(creds);
      } else return res;
    }
    throw new Error('unreachable');
  }
}

function describeFailure(ref: ImageReference, reference: string, res: HttpResponse): RegistryError {
  let code = '';
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
    code = body.errors?.map((e) => e.code).filter(Boolean).join(',') ?? '';
  } catch {
    /* HEAD or non-JSON */
  }
  const where = `${ref.registry}/${ref.repository}:${reference}`.replace(':sha256:', '@sha256:');
  if (res.status === 404) {
    return new RegistryError(`${where}: MANIFEST_UNKNOWN (the registry has no such tag or digest; was the image pushed to this registry and repository?)`, 404);
  }
  if (res.status === 401 || res.status === 403) {
    return new RegistryError(`${where}: registry answered ${res.status}${code ? ` ${code}` : ''} (check the registry credentials)`, res.status);
  }
  return new RegistryError(`${where}: registry answered ${res.status}${code ? ` ${code}` : ''}`, res.status, res.status === 429 || res.status >= 500);
}

function parsePlatforms(bytes: Buffer): PlatformManifest[] {
  const index = JSON.parse(bytes.toString('utf8')) as {
    manifests?: Array<{ digest?: string; mediaType?: string; platform?: { os?: string; architecture?: string; variant?: string } }>;
  };
  return (index.manifests ?? [])
    .filter((m) => typeof m.digest === 'string' && DIGEST_RE.test(m.digest))
    .map((m) => ({
      digest: m.digest!,
      mediaType: m.mediaType ?? '',
      platform: m.platform ? [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/') : 'unknown',
    }));
}

/**
 * Refuses a 200 whose body is no manifest (a proxy's error page, a truncated
 * answer): hashing it would publish a digest the registry does not have.
 */
function assertManifestBody(ref: ImageReference, body: Buffer): void {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    doc = undefined;
  }
  const m = doc as { schemaVersion?: unknown; manifests?: unknown; layers?: unknown; config?: unknown } | undefined;
  if (!m || typeof m !== 'object' || (m.schemaVersion === undefined && !Array.isArray(m.manifests) && !Array.isArray(m.layers))) {
    throw new RegistryError(`${ref.original}: the registry answered 200 with a body that is not a manifest (${body.length} bytes)`, undefined, true);
  }
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
  let mediaType = '';
  let source: 'head' | 'get' = 'head';
  let body: Buffer | undefined;
  if (head.status === 200) {
    digest = headerValue(head, 'docker-content-digest');
    mediaType = mediaTypeOf(head);
    if (digest && !DIGEST_RE.test(digest)) digest = undefined;
  } else if (![400, 405, 501].includes(head.status)) {
    // Registries that refuse HEAD get a GET; every other answer is final.
    throw describeFailure(ref, reference, head);
  }
  if (!digest || isIndexMediaType(mediaType) || !mediaType) {
    const get = await session.manifest('GET', reference);
    if (get.status !== 200) throw describeFailure(ref, reference, get);
    body = get.body;
    assertManifestBody(ref, body);
    const hashed = sha256Digest(body);
    const header = headerValue(get, 'docker-content-digest');
    if (!digest) {
      digest = hashed;
      source = 'get';
    }
    if (header && header !== hashed) {
      throw new RegistryError(`${ref.original}: the registry's Docker-Content-Digest (${header}) does not match the sha256 of the bytes it returned (${hashed})`);
    }
    if (digest !== hashed) {
      throw new RegistryError(`${ref.original}: HEAD reported ${digest} but GET returned bytes hashing to ${hashed} (did the tag move?)`, undefined, true);
    }
    mediaType = mediaTypeOf(get) || mediaType;
    if (!mediaType) {
      try {
        mediaType = (JSON.parse(body.toString('utf8')) as { mediaType?: string }).mediaType ?? '';
      } catch {
        /* leave empty */
      }
    }
  }
  if (ref.digest && digest !== ref.digest) {
    throw new RegistryError(`${ref.original}: the registry reports ${digest} for this digest reference`);
  }
  const isIndex = isIndexMediaType(mediaType);
  const platforms = isIndex && body ? parsePlatforms(body) : [];
  const resolved: ResolvedImage = {
    ref,
    pinned: `${repoName(ref)}@${digest}`,
    digest: digest!,
    mediaType: mediaType || 'unknown',
    isIndex,
    platforms,
    source,
  };
  options.log?.(
    `${ref.original} → ${resolved.pinned} (${resolved.mediaType}` +
      (isIndex ? `; index of ${platforms.length} platform manifest(s): ${platforms.map((p) => p.platform).join(', ')}` : '') +
      `; digest from ${source === 'head' ? 'Docker-Content-Digest' : 'sha256 of the returned bytes'})`,
  );
  return resolved;
}

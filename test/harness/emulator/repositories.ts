// A registry's repositories as the DigitalOcean API shows them (list a repository's tags, delete a
// tag, delete a manifest), backed by the REAL distribution registry the front proxies to: repository
// `<repo>` of registry `<name>` is the upstream repository `<name>/<repo>`, as registry.digitalocean.com
// names it. digitalocean.ts routes, authenticates, rate-limits and injects faults; this module only
// talks to the upstream and shapes DigitalOcean's answers.
//
// Tag delete semantics. DigitalOcean deletes the tag and leaves its manifest untagged (the next GC of
// untagged manifests reclaims it). Distribution 2.8 deletes manifests by digest only, which drops
// every tag on that manifest. So a tag delete is emulated as: GET the manifest's bytes, DELETE it by
// digest, PUT the same bytes back by digest (the manifest is present again, untagged: pullable by
// digest, like DigitalOcean's), then PUT them back under every other tag that pointed at it. The
// blobs are still there (no GC ran), so the PUTs succeed. The upstream must run with deletion
// enabled (startRegistry's default); one without answers 405 UNSUPPORTED, which the emulator passes
// on as a 500 naming the cause (DigitalOcean itself always supports deletes).
import { URL } from 'url';
import { isoSeconds } from './http';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** What the API answers: a status and a JSON body, or DigitalOcean's error (id and message). */
export type RepoAnswer = { status: number; body?: unknown } | { status: number; error: [string, string] };

interface Manifest {
  digest: string;
  bytes: Buffer;
  contentType: string;
  compressedSize: number;
}

const notFound: RepoAnswer = { status: 404, error: ['not_found', 'The resource you requested could not be found.'] };

export class Repositories {
  /** When each (repository, tag) was first seen on its digest: the tag's updated_at. */
  private readonly seen = new Map<string, { digest: string; at: number }>();

  constructor(private readonly upstream: URL | undefined) {}

  private async up(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Response> {
    return fetch(new URL(path, this.upstream), { method, headers, body, redirect: 'manual' });
  }

  private async manifest(repo: string, reference: string): Promise<Manifest | undefined> {
    const res = await this.up('GET', `/v2/${repo}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`upstream GET manifest ${reference} answered ${res.status}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = res.headers.get('docker-content-digest') ?? '';
    if (!DIGEST_RE.test(digest)) throw new Error(`upstream GET manifest ${reference} answered without a sha256 digest`);
    let compressedSize = bytes.length;
    try {
      const m = JSON.parse(bytes.toString('utf8')) as { config?: { size?: number }; layers?: Array<{ size?: number }>; manifests?: Array<{ size?: number }> };
      for (const d of [m.config, ...(m.layers ?? []), ...(m.manifests ?? [])]) compressedSize += typeof d?.size === 'number' ? d.size : 0;
    } catch {
      /* not JSON: its own length only */
    }
    return { digest, bytes, contentType: res.headers.get('content-type') ?? '', compressedSize };
  }

  /** The upstream repository's tags, sorted; undefined when the repository does not exist. */
  private async tagNames(repo: string): Promise<string[] | undefined> {
    if (!this.upstream) return undefined;
    const res = await this.up('GET', `/v2/${repo}/tags/list`, { accept: 'application/json' });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`upstream GET tags/list answered ${res.status}`);
    const j = (await res.json()) as { tags?: string[] | null };
    return [...(j.tags ?? [])].sort();
  }

  /** GET .../repositories/{repository}/tags: one page of tag objects, with absolute page links. */
  async list(registry: string, repository: string, page: number, per: number, pageUrl: (n: number) => string): Promise<RepoAnswer> {
    const repo = `${registry}/${repository}`;
    const names = await this.tagNames(repo);
    if (names === undefined) return notFound;
    const pages = Math.max(1, Math.ceil(names.length / per));
    const tags: unknown[] = [];
    for (const tag of names.slice((page - 1) * per, page * per)) {
      const m = await this.manifest(repo, tag);
      if (!m) continue; // deleted between the list and the read
      const key = `${repo}:${tag}`;
      let s = this.seen.get(key);
      if (!s || s.digest !== m.digest) this.seen.set(key, (s = { digest: m.digest, at: Date.now() }));
      // size_bytes (uncompressed) is computed asynchronously by DigitalOcean and may be absent: omitted here.
      tags.push({
        registry_name: registry,
        repository,
        tag,
        manifest_digest: m.digest,
        compressed_size_bytes: m.compressedSize,
        updated_at: isoSeconds(s.at),
      });
    }
    const body: Record<string, unknown> = { tags };
    if (pages > 1) {
      const p: Record<string, string> = {};
      if (page > 1) Object.assign(p, { first: pageUrl(1), prev: pageUrl(Math.min(page - 1, pages)) });
      if (page < pages) Object.assign(p, { next: pageUrl(page + 1), last: pageUrl(pages) });
      body.links = { pages: p };
    } else body.links = {};
    body.meta = { total: names.length };
    return { status: 200, body };
  }

  /** DELETE by digest upstream: 204, 404, or a 500 naming an upstream that refuses deletes. */
  private async deleteDigest(repo: string, digest: string): Promise<RepoAnswer> {
    const res = await this.up('DELETE', `/v2/${repo}/manifests/${digest}`);
    await res.arrayBuffer();
    if (res.status === 202 || res.status === 200 || res.status === 204) return { status: 204 };
    if (res.status === 404) return notFound;
    const why = res.status === 405 ? ' (405 UNSUPPORTED: start the registry with storage.delete.enabled)' : '';
    return { status: 500, error: ['server_error', `emulator: the upstream registry refused the delete: ${res.status}${why}`] };
  }

  private async put(repo: string, reference: string, m: Manifest): Promise<void> {
    const res = await this.up('PUT', `/v2/${repo}/manifests/${reference}`, { 'content-type': m.contentType }, m.bytes);
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`upstream PUT manifest ${reference} answered ${res.status}`);
  }

  /** DELETE .../repositories/{repository}/digests/{digest}: the manifest and all its tags. */
  async deleteManifest(registry: string, repository: string, digest: string): Promise<RepoAnswer> {
    if (!DIGEST_RE.test(digest)) return { status: 422, error: ['unprocessable_entity', 'invalid manifest digest'] };
    if (!this.upstream) return notFound;
    return this.deleteDigest(`${registry}/${repository}`, digest);
  }

  /** DELETE .../repositories/{repository}/tags/{tag}: the tag only; its manifest stays, untagged (see the top). */
  async deleteTag(registry: string, repository: string, tag: string): Promise<RepoAnswer> {
    const repo = `${registry}/${repository}`;
    const names = await this.tagNames(repo);
    if (names === undefined || !names.includes(tag)) return notFound;
    const m = await this.manifest(repo, tag);
    if (!m) return notFound;
    const others: string[] = [];
    for (const t of names) if (t !== tag && (await this.manifest(repo, t))?.digest === m.digest) others.push(t);
    const gone = await this.deleteDigest(repo, m.digest);
    if (gone.status !== 204) return gone;
    await this.put(repo, m.digest, m);
    for (const t of others) await this.put(repo, t, m);
    this.seen.delete(`${repo}:${tag}`);
    return { status: 204 };
  }
}

// The emulator's repository endpoints (list tags, delete a tag, delete a manifest) over the REAL
// distribution registry, driven both by plain requests and by the extension's own DigitalOceanClient.
import * as assert from 'assert';
import { startEmulator, Emulator, EmulatorOptions } from '../harness/emulator';
import { startRegistry, pushTinyImage, run, RealRegistry } from '../harness/registry';
import { tools } from '../harness/paths';
import { DeleteRefusedError, DigitalOceanClient, RepositoryNotFoundError } from '../../tasks/common/services/digitalocean';
import { call } from '../helpers/emulator-call';

const ALL = ['registry:read', 'registry:update', 'registry:delete'];
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json';

function client(emu: Emulator, token = emu.token): DigitalOceanClient {
  return new DigitalOceanClient(
    { token, apiUrl: emu.apiUrl, source: 'env' },
    { maxAttempts: 3, initialBackoffSeconds: 0.01, maxBackoffSeconds: 0.05, requestTimeoutMs: 5000 },
  );
}

/** The upstream manifest's digest for a tag or digest ('' when the registry has none). */
async function upstreamDigest(reg: RealRegistry, repo: string, ref: string): Promise<string> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? '') : '';
}

async function upstreamTags(reg: RealRegistry, repo: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/tags/list`);
  return res.status === 200 ? [...((((await res.json()) as any).tags as string[] | null) ?? [])].sort() : [];
}

describe('emulator repositories (real registry)', function () {
  this.timeout(60_000);
  let reg: RealRegistry;
  let emu: Emulator | undefined;
  let n = 0;
  /** A fresh repository per test: `my/app<n>` in registry demo-registry (upstream demo-registry/my/app<n>). */
  let repo = '';
  let d1 = '';
  let d2 = '';
  const up = () => `demo-registry/${repo}`;
  const start = async (o: EmulatorOptions = {}) =>
    (emu = await startEmulator({
      upstreamRegistry: reg.url,
      tokenScopes: ALL,
      extraTokens: { ro_tok: ['registry:read'], upd_tok: ['registry:update'] },
      ...o,
    }));

  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
  });
  beforeEach(async () => {
    repo = `my/app${++n}`;
    d1 = await pushTinyImage(reg.host, `${up()}:v1`);
    d2 = await pushTinyImage(reg.host, `${up()}:v2`);
    await run(tools.crane, ['tag', `${reg.host}/${up()}:v1`, 'alias', '--insecure']);
  });
  afterEach(async () => {
    await emu?.stop();
    emu = undefined;
  });

  it("lists a repository's tags from the registry: DigitalOcean's tag objects, pages with absolute links, both paths", async () => {
    const e = await start();
    const enc = encodeURIComponent(repo);
    const r = await call(e, 'GET', `/v2/registries/demo-registry/repositories/${enc}/tags`);
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(
      r.json.tags.map((t: any) => [t.tag, t.manifest_digest]),
      [
        ['alias', d1],
        ['v1', d1],
        ['v2', d2],
      ],
    );
    const t = r.json.tags[0];
    assert.strictEqual(t.registry_name, 'demo-registry');
    assert.strictEqual(t.repository, repo);
    assert.ok(Number.isSafeInteger(t.compressed_size_bytes) && t.compressed_size_bytes > 0);
    assert.match(t.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepStrictEqual(r.json.meta, { total: 3 });
    assert.ok(r.headers.get('ratelimit-remaining'));

    const p1 = await call(e, 'GET', `/v2/registries/demo-registry/repositories/${enc}/tags?per_page=2`);
    assert.strictEqual(p1.json.tags.length, 2);
    assert.strictEqual(p1.json.links.pages.next, `${e.apiUrl}/v2/registries/demo-registry/repositories/${enc}/tags?page=2&per_page=2`);
    const p2 = await call(e, 'GET', new URL(p1.json.links.pages.next).pathname + new URL(p1.json.links.pages.next).search);
    assert.deepStrictEqual(
      p2.json.tags.map((x: any) => x.tag),
      ['v2'],
    );
    assert.ok(p2.json.links.pages.prev && !p2.json.links.pages.next);

    const old = await call(e, 'GET', `/v2/registry/demo-registry/repositories/${enc}/tags`);
    assert.strictEqual(old.status, 200);
    assert.strictEqual(old.json.tags.length, 3);

    const tags = await client(e).listTags('demo-registry', repo);
    assert.deepStrictEqual(
      tags.map((x) => `${x.tag}=${x.manifest_digest}`),
      [`alias=${d1}`, `v1=${d1}`, `v2=${d2}`],
    );
  });

  it('the client falls back to the old /v2/registry paths for all three calls', async () => {
    const e = await start({ legacyOnly: true });
    const c = client(e);
    assert.strictEqual((await c.listTags('demo-registry', repo)).length, 3);
    assert.strictEqual(await c.deleteTag('demo-registry', repo, 'alias'), 'deleted');
    assert.strictEqual(await c.deleteManifest('demo-registry', repo, d2), 'deleted');
    const enc = encodeURIComponent(repo);
    const paths = e.requests.filter((r) => r.status < 300 && /tags|digests/.test(r.path)).map((r) => `${r.method} ${r.path.replace(/\?.*$/, '')}`);
    assert.deepStrictEqual(paths, [
      `GET /v2/registry/demo-registry/repositories/${enc}/tags`,
      `DELETE /v2/registry/demo-registry/repositories/${enc}/tags/alias`,
      `DELETE /v2/registry/demo-registry/repositories/${enc}/digests/${d2}`,
    ]);
    assert.deepStrictEqual(await upstreamTags(reg, up()), ['v1']);
  });

  it("a '/' in a repository name must come encoded; an unknown repository or registry is DigitalOcean's 404", async () => {
    const e = await start();
    const raw = await call(e, 'GET', `/v2/registries/demo-registry/repositories/${repo}/tags`);
    assert.strictEqual(raw.status, 404);
    assert.strictEqual(raw.json.id, 'not_found');
    const none = await call(e, 'GET', '/v2/registries/demo-registry/repositories/no%2Fsuch/tags');
    assert.strictEqual(none.status, 404);
    assert.strictEqual(none.json.id, 'not_found');
    assert.strictEqual((await call(e, 'GET', `/v2/registries/nope/repositories/x/tags`)).json.message, 'registry does not exist');
    await assert.rejects(client(e).listTags('demo-registry', 'no/such'), (err: Error) => err instanceof RepositoryNotFoundError);
  });

  it('deleting a tag leaves its manifest (untagged, pullable by digest) and the other tags on it', async () => {
    const e = await start();
    const c = client(e);
    assert.strictEqual(await c.deleteTag('demo-registry', repo, 'v1'), 'deleted');
    assert.deepStrictEqual(await upstreamTags(reg, up()), ['alias', 'v2']);
    assert.strictEqual(await upstreamDigest(reg, up(), 'alias'), d1);
    assert.strictEqual(await upstreamDigest(reg, up(), d1), d1);
    assert.strictEqual(await c.deleteTag('demo-registry', repo, 'v2'), 'deleted');
    assert.deepStrictEqual(await upstreamTags(reg, up()), ['alias']);
    assert.strictEqual(await upstreamDigest(reg, up(), d2), d2, 'an untagged manifest stays until a GC');
    assert.strictEqual(await c.deleteTag('demo-registry', repo, 'v2'), 'already-gone');
    const r = await call(e, 'DELETE', `/v2/registries/demo-registry/repositories/${encodeURIComponent(repo)}/tags/v2`);
    assert.strictEqual(r.status, 404);
    assert.strictEqual(r.json.id, 'not_found');
    assert.deepStrictEqual(
      (await c.listTags('demo-registry', repo)).map((t) => t.tag),
      ['alias'],
    );
  });

  it('deleting a manifest removes it and every tag on it: 204, then 404', async () => {
    const e = await start();
    const path = `/v2/registries/demo-registry/repositories/${encodeURIComponent(repo)}/digests/${d1}`;
    const r = await call(e, 'DELETE', path);
    assert.strictEqual(r.status, 204);
    assert.strictEqual(r.text, '');
    assert.deepStrictEqual(await upstreamTags(reg, up()), ['v2']);
    assert.strictEqual(await upstreamDigest(reg, up(), d1), '');
    assert.strictEqual((await call(e, 'DELETE', path)).status, 404);
    assert.strictEqual(await client(e).deleteManifest('demo-registry', repo, d1), 'already-gone');
    assert.strictEqual(await client(e).deleteManifest('demo-registry', repo, d2), 'deleted');
    assert.strictEqual((await call(e, 'DELETE', `/v2/registry/demo-registry/repositories/${encodeURIComponent(repo)}/digests/sha256:nothex`)).status, 422);
  });

  it('scopes: registry:read to list, registry:delete to delete (403 otherwise, named by the client)', async () => {
    const e = await start();
    const enc = encodeURIComponent(repo);
    assert.strictEqual((await call(e, 'GET', `/v2/registries/demo-registry/repositories/${enc}/tags`, undefined, 'ro_tok')).status, 200);
    assert.strictEqual((await call(e, 'GET', `/v2/registries/demo-registry/repositories/${enc}/tags`, undefined, 'upd_tok')).status, 403);
    const del = await call(e, 'DELETE', `/v2/registries/demo-registry/repositories/${enc}/tags/v1`, undefined, 'ro_tok');
    assert.strictEqual(del.status, 403);
    assert.strictEqual(del.json.id, 'forbidden');
    assert.strictEqual((await call(e, 'DELETE', `/v2/registries/demo-registry/repositories/${enc}/tags/v1`, undefined, 'bogus')).status, 401);
    await assert.rejects(
      client(e, 'ro_tok').deleteTag('demo-registry', repo, 'v1'),
      (err: Error) => err.name === 'DeleteRefusedError' && /registry:delete/.test(err.message),
    );
    await assert.rejects(client(e, 'ro_tok').deleteManifest('demo-registry', repo, d1), /registry:delete/);
    assert.strictEqual(await upstreamDigest(reg, up(), 'v1'), d1, 'nothing was deleted');
    assert.strictEqual((await call(e, 'PUT', `/v2/registries/demo-registry/repositories/${enc}/tags/v1`)).status, 404);
  });

  it('a delete while a GC runs is refused (409, read-only); listing still works; after the GC the delete goes through', async () => {
    const e = await start();
    const c = client(e);
    e.startGc(undefined, { steps: [{ status: 'waiting for write JWTs to expire', seconds: 60 }] });
    const r = await call(e, 'DELETE', `/v2/registries/demo-registry/repositories/${encodeURIComponent(repo)}/tags/v1`);
    assert.strictEqual(r.status, 409);
    assert.strictEqual(r.json.id, 'conflict');
    assert.match(r.json.message, /read-only while a garbage collection is running/);
    await assert.rejects(
      c.deleteManifest('demo-registry', repo, d1),
      (err: Error) => err instanceof DeleteRefusedError && err.status === 409 && /read-only/.test(err.doMessage),
    );
    assert.strictEqual((await c.listTags('demo-registry', repo)).length, 3);
    assert.strictEqual(await upstreamDigest(reg, up(), 'v1'), d1);
    e.finishGc();
    assert.strictEqual(await c.deleteTag('demo-registry', repo, 'v1'), 'deleted');
  });

  it('faults and rate limits apply to the new endpoints (tags-list, tag-delete, manifest-delete)', async () => {
    const e = await start();
    const c = client(e);
    e.fault('tags-list', { kind: '5xx', times: 2 });
    assert.strictEqual((await c.listTags('demo-registry', repo)).length, 3);
    assert.strictEqual(e.count('tags-list'), 3);
    e.fault('tag-delete', { kind: 'raw', status: 404, times: 3 });
    await assert.rejects(c.deleteTag('demo-registry', repo, 'v1'), (err: Error) => /unexpected answer/.test(err.message));
    assert.strictEqual(await upstreamDigest(reg, up(), 'v1'), d1, "a proxy's 404 deleted nothing and was not 'already gone'");
    e.fault('manifest-delete', { kind: 'status', status: 412, message: 'refused by policy' });
    await assert.rejects(
      c.deleteManifest('demo-registry', repo, d2),
      (err: Error) => err instanceof DeleteRefusedError && err.doMessage === 'refused by policy',
    );
    e.fault('manifest-delete', { kind: '429', retryAfterSeconds: 1 });
    const t0 = Date.now();
    assert.strictEqual(await c.deleteManifest('demo-registry', repo, d2), 'deleted');
    assert.ok(Date.now() - t0 >= 900, 'retry-after honoured');
    assert.strictEqual(e.count('manifest-delete'), 3);
    await e.stop();

    const limited = await start({ rateLimitPerMinute: 2 });
    const p = `/v2/registries/demo-registry/repositories/${encodeURIComponent(repo)}/tags`;
    await call(limited, 'GET', p);
    await call(limited, 'GET', p);
    const over = await call(limited, 'GET', p);
    assert.strictEqual(over.status, 429);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
  });

  it('over a registry without deletion (405 UNSUPPORTED upstream) a delete is a 500 naming the cause', async () => {
    const noDel = await startRegistry({ deleteEnabled: false });
    try {
      const digest = await pushTinyImage(noDel.host, 'demo-registry/app:v1');
      const direct = await fetch(`${noDel.url}/v2/demo-registry/app/manifests/${digest}`, { method: 'DELETE' });
      assert.strictEqual(direct.status, 405);
      assert.strictEqual(((await direct.json()) as any).errors[0].code, 'UNSUPPORTED');
      const e = await start({ upstreamRegistry: noDel.url });
      const r = await call(e, 'DELETE', `/v2/registries/demo-registry/repositories/app/digests/${digest}`);
      assert.strictEqual(r.status, 500);
      assert.match(r.json.message, /405 UNSUPPORTED/);
    } finally {
      await noDel.stop();
    }
  });
});

// Unit: the DigitalOcean client's repository calls (listTags, deleteTag, deleteManifest) against small
// hostile servers of ours on 127.0.0.1 (real sockets, real http.ts): names encoded in the path, the
// list whole or an error, "no such repository" and "already gone" only from DigitalOcean's own 404.
import * as assert from 'assert';
import * as http from 'http';
import { DeleteRefusedError, MAX_LIST_PAGES, RepositoryNotFoundError, TAG_PAGE_SIZE, normalizeTag } from '../../tasks/common/services/digitalocean';
import { UnexpectedAnswerError } from '../../tasks/common/platform/http';
import { hostileClient, hostileDoApi, html, json } from '../helpers/hostile-do';

const TOKEN = 'dop_v1_unit_repo_secret_token';
const DIGEST = 'sha256:cb8a924afdf0229ef7515d9e5b3024e23b3eb03ddbba287f4a19c6ac90b8d221';
const TAG = {
  registry_name: 'reg',
  repository: 'my/app',
  tag: 'latest',
  manifest_digest: DIGEST,
  compressed_size_bytes: 2803255,
  size_bytes: 5861888,
  updated_at: '2020-04-09T23:54:25Z',
};
const LIST_PATH = '/v2/registries/reg/repositories/my%2Fapp/tags';

const pageOf = (req: http.IncomingMessage) => Number(new URL(req.url!, 'http://x').searchParams.get('page') ?? '1');
const tagsOn = (page: number, n = 2) => Array.from({ length: n }, (_, i) => ({ ...TAG, tag: `v${page}.${i}` }));

describe('unit DigitalOceanClient repositories (hostile server)', function () {
  this.timeout(20_000);
  let srv: Awaited<ReturnType<typeof hostileDoApi>> | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it("encodes a repository name with '/' (and the tag) in the path of all three calls", async () => {
    srv = await hostileDoApi((req, res) => {
      if (req.method === 'GET') return json(res, 200, { tags: [TAG], links: {}, meta: { total: 1 } });
      res.writeHead(204);
      res.end();
    });
    const c = hostileClient(srv.url, TOKEN);
    assert.deepStrictEqual(await c.listTags('reg', 'my/app'), [TAG]);
    assert.strictEqual(await c.deleteTag('reg', 'my/app', 'v1.0_rc-1'), 'deleted');
    assert.strictEqual(await c.deleteManifest('reg', 'my/app', DIGEST), 'deleted');
    assert.deepStrictEqual(srv.calls, [
      `GET ${LIST_PATH}?per_page=${TAG_PAGE_SIZE}&page=1`,
      'DELETE /v2/registries/reg/repositories/my%2Fapp/tags/v1.0_rc-1',
      `DELETE /v2/registries/reg/repositories/my%2Fapp/digests/${DIGEST}`,
    ]);
  });

  it('refuses names out of grammar before any request, quoting them', async () => {
    srv = await hostileDoApi((_q, res) => json(res, 500, {}));
    const c = hostileClient(srv.url, TOKEN);
    await assert.rejects(c.listTags('reg', 'My/App'), (e: Error) => e.name === 'UserError' && /repository name/.test(e.message));
    await assert.rejects(c.listTags('reg', '../x'), /repository name/);
    await assert.rejects(c.deleteTag('reg', 'app', 'bad/tag'), /The tag/);
    await assert.rejects(c.deleteTag('reg', 'app', '.hidden'), /The tag/);
    await assert.rejects(c.deleteManifest('reg', 'app', 'sha256:ABC'), /manifest digest/);
    assert.deepStrictEqual(srv.calls, []);
  });

  it('follows links.pages.next by page number only (never its host), and keeps a tag seen twice once', async () => {
    srv = await hostileDoApi((req, res) => {
      const page = pageOf(req);
      const links = page < 3 ? { pages: { next: `https://elsewhere.invalid/steal?page=${page + 1}` } } : {};
      // page 3 repeats a tag of page 2 (the list shifted under a concurrent change)
      const tags = page === 3 ? [...tagsOn(3), { ...TAG, tag: 'v2.1' }] : tagsOn(page);
      json(res, 200, { tags, links, meta: { total: 6 } });
    });
    const tags = await hostileClient(srv.url, TOKEN).listTags('reg', 'my/app');
    assert.deepStrictEqual(
      tags.map((t) => t.tag),
      ['v1.0', 'v1.1', 'v2.0', 'v2.1', 'v3.0', 'v3.1'],
    );
    assert.strictEqual(srv.calls.length, 3);
    assert.ok(srv.calls.every((h) => h.startsWith(`GET ${LIST_PATH}?`) && !h.includes('elsewhere')));
  });

  it('a looping next link or more than MAX_LIST_PAGES pages is an error, never part of the list', async () => {
    let mode: 'loop' | 'endless' = 'loop';
    srv = await hostileDoApi((req, res) => {
      const page = pageOf(req);
      const next = mode === 'loop' ? `${LIST_PATH}?page=${page === 2 ? 1 : 2}` : `${LIST_PATH}?page=${page + 1}`;
      json(res, 200, { tags: tagsOn(page), links: { pages: { next } } });
    });
    const c = hostileClient(srv.url, TOKEN);
    await assert.rejects(c.listTags('reg', 'my/app'), (e: Error) => e instanceof UnexpectedAnswerError && /goes back to page 1/.test(e.message));
    assert.strictEqual(srv.calls.length, 2);
    mode = 'endless';
    srv.calls.length = 0;
    await assert.rejects(c.listTags('reg', 'my/app'), (e: Error) => e instanceof UnexpectedAnswerError && /more than 20 pages/.test(e.message));
    assert.strictEqual(srv.calls.length, MAX_LIST_PAGES);
  });

  it('an empty page ends the list', async () => {
    srv = await hostileDoApi((req, res) => json(res, 200, { tags: pageOf(req) === 1 ? tagsOn(1) : [], links: { pages: { next: `${LIST_PATH}?page=2` } } }));
    assert.strictEqual((await hostileClient(srv.url, TOKEN).listTags('reg', 'my/app')).length, 2);
  });

  it('a tag object out of grammar (or of another repository) fails naming the field, never the value', async () => {
    for (const [field, value] of [
      ['tag', 'x ##vso[task.complete]'],
      ['manifest_digest', 'md5:abc'],
      ['repository', 'other/app'],
      ['registry_name', 'another'],
    ]) {
      srv = await hostileDoApi((_q, res) => json(res, 200, { tags: [{ ...TAG, [field]: value }] }));
      await assert.rejects(
        hostileClient(srv.url, TOKEN).listTags('reg', 'my/app'),
        (e: Error) => /\(after 2 attempt|not retried further/.test(e.message) && e.message.includes(`${field}\``) && !e.message.includes(value),
        field,
      );
      await srv.close();
      srv = undefined;
    }
  });

  it("'no such repository' only from DigitalOcean's own 404; a proxy's HTML 404 is a failure", async () => {
    let proxy = false;
    srv = await hostileDoApi((_q, res) => (proxy ? html(res, 404) : json(res, 404, { id: 'not_found', message: 'repository not found', request_id: 'r-1' })));
    const c = hostileClient(srv.url, TOKEN);
    await assert.rejects(
      c.listTags('reg', 'my/app'),
      (e: Error) =>
        e instanceof RepositoryNotFoundError && e.name === 'RepositoryNotFoundError' && e.repository === 'my/app' && /repository not found/.test(e.message),
    );
    proxy = true;
    srv.calls.length = 0;
    await assert.rejects(
      c.listTags('reg', 'my/app'),
      (e: Error) =>
        !(e instanceof RepositoryNotFoundError) && /unexpected answer after 2 attempt/.test(e.message) && /not DigitalOcean's error/.test(e.message),
    );
    assert.strictEqual(srv.calls.length, 2, 'retried as transient');
  });

  it("403 on a delete is a refusal (DeleteRefusedError, not read-only) naming the registry:delete scope; a list's 403 a UserError", async () => {
    srv = await hostileDoApi((_q, res) => json(res, 403, { id: 'forbidden', message: 'You are not authorized to perform this operation' }));
    const c = hostileClient(srv.url, TOKEN);
    await assert.rejects(
      c.deleteTag('reg', 'app', 'v1'),
      (e: Error) => e instanceof DeleteRefusedError && e.status === 403 && !e.readOnly && /lacks the registry:delete scope/.test(e.message),
    );
    await assert.rejects(c.deleteManifest('reg', 'app', DIGEST), /registry:delete/);
    await assert.rejects(c.listTags('reg', 'app'), /lacks the registry:read scope/);
  });

  it("a delete's 404 is 'already-gone' only as DigitalOcean's JSON; another 404 is a failure", async () => {
    let proxy = false;
    srv = await hostileDoApi((_q, res) =>
      proxy ? html(res, 404) : json(res, 404, { id: 'not_found', message: 'The resource you requested could not be found.' }),
    );
    const c = hostileClient(srv.url, TOKEN);
    assert.strictEqual(await c.deleteTag('reg', 'app', 'v1'), 'already-gone');
    assert.strictEqual(await c.deleteManifest('reg', 'app', DIGEST), 'already-gone');
    proxy = true;
    await assert.rejects(c.deleteTag('reg', 'app', 'v1'), (e: Error) => /unexpected answer/.test(e.message));
  });

  it("DigitalOcean's refusal (409/412/422/423) is a DeleteRefusedError with its message; the same status from a proxy is not", async () => {
    let status = 409;
    let proxy = false;
    srv = await hostileDoApi((_q, res) =>
      proxy ? html(res, status) : json(res, status, { id: 'conflict', message: 'the registry is read-only during garbage collection' }),
    );
    const c = hostileClient(srv.url, TOKEN);
    for (status of [409, 412, 422, 423]) {
      await assert.rejects(
        c.deleteTag('reg', 'app', 'v1'),
        (e: Error) =>
          e instanceof DeleteRefusedError &&
          e.status === status &&
          e.target === 'v1' &&
          /read-only during garbage collection/.test(e.doMessage) &&
          /app:v1/.test(e.message),
      );
    }
    status = 409;
    proxy = true;
    await assert.rejects(c.deleteManifest('reg', 'app', DIGEST), (e: Error) => !(e instanceof DeleteRefusedError) && /answered 409/.test(e.message));
  });

  it('429 with retry-after is honoured, then the delete goes through', async () => {
    let n = 0;
    const at: number[] = [];
    srv = await hostileDoApi((_q, res) => {
      at.push(Date.now());
      if (n++ === 0)
        return json(res, 429, { id: 'too_many_requests', message: 'API Rate limit exceeded.' }, { 'retry-after': '1', 'ratelimit-remaining': '0' });
      res.writeHead(204);
      res.end();
    });
    assert.strictEqual(await hostileClient(srv.url, TOKEN).deleteManifest('reg', 'app', DIGEST), 'deleted');
    assert.strictEqual(at.length, 2);
    assert.ok(at[1] - at[0] >= 950, `waited ${at[1] - at[0]} ms`);
  });
});

describe('unit normalizeTag', () => {
  it('keeps a well-formed tag; the sizes are optional', () => {
    assert.deepStrictEqual(normalizeTag(TAG), TAG);
    const { size_bytes: _a, compressed_size_bytes: _b, ...bare } = TAG;
    assert.deepStrictEqual(normalizeTag(bare), bare);
    assert.deepStrictEqual(normalizeTag({ ...bare, size_bytes: null }), bare);
  });

  const bad: Array<[string, unknown]> = [
    ['registry_name', 'Reg_Name'],
    ['repository', 'My/App'],
    ['repository', 'app/'],
    ['repository', 'a'.repeat(300)],
    ['tag', '-leading-dash'],
    ['tag', 'a'.repeat(129)],
    ['tag', 'line\nbreak'],
    ['manifest_digest', 'sha256:' + 'A'.repeat(64)],
    ['manifest_digest', 'sha512:' + 'a'.repeat(128)],
    ['updated_at', 'yesterday'],
    ['updated_at', '2020-04-09 23:54:25'],
    ['compressed_size_bytes', -1],
    ['compressed_size_bytes', 1.5],
    ['size_bytes', '5861888'],
    ['size_bytes', 2 ** 60],
  ];
  for (const [field, value] of bad) {
    it(`refuses ${field}=${JSON.stringify(value).slice(0, 40)}, naming the field and not the value`, () => {
      assert.throws(
        () => normalizeTag({ ...TAG, [field]: value }),
        (e: Error) => e instanceof UnexpectedAnswerError && e.message.includes(`\`${field}\``) && !e.message.includes(String(value)),
      );
    });
  }

  it('refuses a missing field and a non-object', () => {
    const { manifest_digest: _drop, ...partial } = TAG;
    assert.throws(() => normalizeTag(partial), /`manifest_digest` is missing/);
    assert.throws(() => normalizeTag(null), UnexpectedAnswerError);
    assert.throws(() => normalizeTag([TAG]), UnexpectedAnswerError);
  });
});

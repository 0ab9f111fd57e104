// Unit: every DigitalOcean object published in its OpenAPI examples and godo's fixtures
// (test/helpers/published-do.ts, each naming its file) passes the shape checks, and the client
// reads godo's paged tag list through links.pages.next on both the current and the deprecated paths.
import * as assert from 'assert';
import { DigitalOceanClient, normalizeGc } from '../../tasks/common/services/digitalocean';
import { tagListOf } from '../../tasks/common/services/digitalocean/repository';
import { GODO_GC, GODO_REGISTRY, OPENAPI_GC, OPENAPI_GC_LIST, OPENAPI_TAG_LIST, godoGcList, godoTagList, ok, publishedDoApi } from '../helpers/published-do';

function lastPage(base: string): object {
  const page1 = godoTagList(base as '/v2/registries') as { tags: Array<Record<string, unknown>>; meta: unknown };
  const first = `https://api.digitalocean.com${base}/test-registry/repositories/test%2Frepository/tags?page=1`;
  return { tags: [{ ...page1.tags[0], tag: 'test-tag-2' }], links: { pages: { first, prev: first } }, meta: page1.meta };
}

describe('unit: the published DigitalOcean examples pass the shape checks', function () {
  this.timeout(20_000);

  it('every published GC object (OpenAPI garbage_collection.yml, garbage_collections.yml; godo testGarbageCollection)', () => {
    for (const gc of [
      OPENAPI_GC,
      OPENAPI_GC_LIST.garbage_collections[0],
      GODO_GC,
      ...(godoGcList('/v2/registries') as { garbage_collections: object[] }).garbage_collections,
    ]) {
      const n = normalizeGc(gc);
      assert.strictEqual(n.uuid, (gc as { uuid: string }).uuid);
      assert.strictEqual(n.status, 'requested');
    }
    assert.strictEqual(normalizeGc(GODO_GC).type, 'unreferenced blobs only');
  });

  it('every published tag list (OpenAPI repository_tags.yml; godo TestRegistries_ListRepositoryTags)', () => {
    assert.strictEqual(tagListOf(OPENAPI_TAG_LIST, 'tags', 'example', 'repo-1')[0].tag, 'latest');
    assert.strictEqual(tagListOf(godoTagList('/v2/registries'), 'tags', 'test-registry', 'test/repository')[0].tag, 'test-tag');
  });

  for (const legacyOnly of [false, true]) {
    it(`listTags follows godo's links.pages.next (${legacyOnly ? 'deprecated /v2/registry' : '/v2/registries'} paths)`, async () => {
      const base = legacyOnly ? '/v2/registry' : '/v2/registries';
      const api = await publishedDoApi(
        'test-registry',
        {
          registry: () => ok(GODO_REGISTRY),
          account: () => ok(GODO_REGISTRY),
          // Page 1 is godo's fixture; page 2 (not published) is composed: its tag renamed, and the
          // backward links of specification/shared/pages.yml instead of a next link.
          tags: (q) => ok(q.query.get('page') === '1' ? godoTagList(base) : lastPage(base)),
        },
        { legacyOnly },
      );
      try {
        const client = new DigitalOceanClient(
          { token: 'dop_v1_unit_published', apiUrl: api.url, source: 'env' },
          { maxAttempts: 2, initialBackoffSeconds: 0.01 },
        );
        const tags = await client.listTags('test-registry', 'test/repository');
        assert.deepStrictEqual(
          tags.map((t) => t.tag),
          ['test-tag', 'test-tag-2'],
        );
        const pages = api.requests.filter((r) => r.route === 'tags').map((r) => `${r.path}?page=${r.query.get('page')}`);
        assert.deepStrictEqual(pages, [
          `${base}/test-registry/repositories/test%2Frepository/tags?page=1`,
          `${base}/test-registry/repositories/test%2Frepository/tags?page=2`,
        ]);
      } finally {
        await api.close();
      }
    });
  }
});

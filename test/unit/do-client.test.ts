// Unit: the DigitalOcean client against a small hostile server on 127.0.0.1 (real sockets, real
// http.ts): answers of the wrong shape are errors, never "none active"; pagination cannot loop.
import * as assert from 'assert';
import { MAX_LIST_PAGES, normalizeGc } from '../../tasks/common/services/digitalocean';
import { UnexpectedAnswerError } from '../../tasks/common/platform/http';
import { hostileClient, hostileDoApi, json } from '../helpers/hostile-do';

const TOKEN = 'dop_v1_unit_secret_token';
const UUID = '3f1d2c4b-5a69-4e7f-8a9b-0c1d2e3f4a5b';
const GC = {
  uuid: UUID,
  registry_name: 'reg',
  status: 'succeeded',
  type: 'unreferenced blobs only',
  created_at: '2024-05-01T10:00:00Z',
  updated_at: '2024-05-01T10:01:00.123Z',
  blobs_deleted: 3,
  freed_bytes: 1024,
};

describe('unit DigitalOceanClient (hostile server)', function () {
  this.timeout(20_000);
  let srv: Awaited<ReturnType<typeof hostileDoApi>> | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it("404 on the active-GC endpoint is 'none' only as DigitalOcean's JSON error", async () => {
    srv = await hostileDoApi((_q, res) => json(res, 404, { id: 'not_found', message: 'The resource you requested could not be found.' }));
    assert.strictEqual(await hostileClient(srv.url, TOKEN).getActiveGc('reg'), undefined);
  });

  const bad404: Array<[string, string, string]> = [
    ['an HTML page', 'text/html', '<html><body>404 Not Found</body></html>'],
    ['plain text', 'text/plain', 'not found'],
    ['JSON of another shape', 'application/json', '{"error":"not found"}'],
    ['JSON with a non-string id', 'application/json', '{"id":404,"message":"x"}'],
  ];
  for (const [what, type, body] of bad404) {
    it(`a 404 that is ${what} is an error after the retries, never 'no GC active'`, async () => {
      srv = await hostileDoApi((_q, res) => {
        res.writeHead(404, { 'content-type': type });
        res.end(body);
      });
      await assert.rejects(
        hostileClient(srv.url, TOKEN).getActiveGc('reg'),
        (err: Error) => /unexpected answer after 2 attempt/.test(err.message) && /not DigitalOcean's error/.test(err.message) && !err.message.includes(body),
      );
      assert.strictEqual(srv.hits.filter((h) => h.endsWith('/garbage-collection')).length, 2, 'retried as transient');
    });
  }

  it('a 200 that is truncated, not JSON, or without the object is an error', async () => {
    for (const [type, body] of [
      ['application/json', '{"garbage_collection": {"uuid"'],
      ['text/html', '<html></html>'],
      ['application/json', '{"other": 1}'],
      ['application/json', '[]'],
    ]) {
      srv = await hostileDoApi((_q, res) => {
        res.writeHead(200, { 'content-type': type });
        res.end(body);
      });
      await assert.rejects(hostileClient(srv.url, TOKEN).getActiveGc('reg'), /unexpected answer|`garbage_collection` is/, `${type} ${body}`);
      await srv.close();
      srv = undefined;
    }
  });

  it("error messages carry DigitalOcean's message on one line, cut to 200 characters; non-JSON bodies only by type and length", async () => {
    srv = await hostileDoApi((req, res) => {
      if (req.url!.includes('garbage-collections')) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        return res.end(`echo: Authorization: Bearer ${TOKEN}`);
      }
      json(res, 400, { id: 'bad_request', message: `line one\nline two ##vso[task.complete result=Succeeded]${'x'.repeat(400)}` });
    });
    const c = hostileClient(srv.url, TOKEN);
    const err = await c.getActiveGc('reg').then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err);
    assert.ok(!/[\r\n]/.test(err!.message), err!.message);
    assert.ok(!err!.message.includes('##vso['), err!.message);
    assert.match(err!.message, /answered 400 \(bad_request: line one\\nline two .*\.\.\.\)/);
    assert.ok(err!.message.length < 400, `${err!.message.length} characters`);
    const plain = await c.listGcs('reg').then(
      () => undefined,
      (e: Error) => e,
    );
    assert.match(plain!.message, /answered 400 with a body that is not DigitalOcean's error \(text\/plain, \d+ bytes\)/);
    assert.ok(!plain!.message.includes(TOKEN) && !plain!.message.includes('echo'), plain!.message);
  });

  it('pagination stops on a looping links.pages.next and after MAX_LIST_PAGES pages', async () => {
    let mode: 'loop' | 'endless' = 'loop';
    srv = await hostileDoApi((req, res) => {
      const page = Number(new URL(req.url!, 'http://x').searchParams.get('page') ?? '1');
      const next = mode === 'loop' ? `http://elsewhere.invalid/v2/x?page=1` : `http://elsewhere.invalid/v2/x?page=${page + 1}`;
      json(res, 200, { garbage_collections: [{ ...GC, uuid: UUID.slice(0, -4) + String(page).padStart(4, '0') }], links: { pages: { next } } });
    });
    const c = hostileClient(srv.url, TOKEN);
    const looped = await c.listGcs('reg', 500);
    assert.strictEqual(looped.length, 1);
    assert.strictEqual(srv.hits.filter((h) => h.includes('garbage-collections')).length, 1, 'a next link back to page 1 is not followed');
    mode = 'endless';
    srv.hits.length = 0;
    const endless = await c.listGcs('reg', 500);
    assert.strictEqual(endless.length, MAX_LIST_PAGES);
    assert.strictEqual(srv.hits.filter((h) => h.includes('garbage-collections')).length, MAX_LIST_PAGES);
    assert.ok(
      srv.hits.every((h) => !h.includes('elsewhere')),
      'only the page number is taken from the link',
    );
  });

  it('a 412 or 422 on start is a UserError with the message; only 409 is "already active"', async () => {
    let status = 422;
    srv = await hostileDoApi((_q, res) => json(res, status, { id: 'x', message: 'refused for a reason' }));
    const c = hostileClient(srv.url, TOKEN);
    await assert.rejects(c.startGc('reg', 'unreferenced blobs only'), (e: Error) => e.name === 'UserError' && /refused for a reason/.test(e.message));
    status = 412;
    await assert.rejects(c.startGc('reg', 'unreferenced blobs only'), (e: Error) => e.name === 'UserError' && /answered 412/.test(e.message));
    status = 409;
    await assert.rejects(c.startGc('reg', 'unreferenced blobs only'), (e: Error) => e.constructor.name === 'GcAlreadyActiveError');
  });
});

describe('unit normalizeGc', () => {
  it('keeps a well-formed GC and normalises its type', () => {
    assert.deepStrictEqual(normalizeGc({ ...GC, type: 'Unreferenced Blobs Only' }), GC);
  });

  it('drops an unknown type instead of copying it', () => {
    const gc = normalizeGc({ ...GC, type: 'everything ##vso[x]' });
    assert.strictEqual(gc.type, undefined);
  });

  const bad: Array<[string, unknown]> = [
    ['uuid', 'a/../b'],
    ['uuid', '-rf'],
    ['uuid', 'x'.repeat(129)],
    ['uuid', 'id with space'],
    ['uuid', 42],
    ['registry_name', 'Reg_Name'],
    ['status', 'done ##vso[task.complete]'],
    ['status', 'line\nbreak'],
    ['created_at', 'yesterday'],
    ['updated_at', '2024-05-01 10:00:00'],
    ['blobs_deleted', -1],
    ['blobs_deleted', 1.5],
    ['freed_bytes', '1024'],
    ['freed_bytes', 2 ** 60],
  ];
  for (const [field, value] of bad) {
    it(`refuses ${field}=${JSON.stringify(value)}, naming the field and not the value`, () => {
      assert.throws(
        () => normalizeGc({ ...GC, [field]: value }),
        (e: Error) =>
          e instanceof UnexpectedAnswerError && e.message.includes(`\`${field}\``) && !e.message.includes(String(value)) && !e.message.includes('\n'),
      );
    });
  }

  it('refuses a missing field and a non-object', () => {
    const { freed_bytes: _drop, ...partial } = GC;
    assert.throws(() => normalizeGc(partial), /`freed_bytes` is missing/);
    assert.throws(() => normalizeGc(null), UnexpectedAnswerError);
    assert.throws(() => normalizeGc([GC]), UnexpectedAnswerError);
  });
});

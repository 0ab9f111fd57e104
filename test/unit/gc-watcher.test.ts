// Unit: the one GC watcher (workflows/gcwatch/watcher.ts) against a small scripted DigitalOcean
// API on 127.0.0.1 (real sockets, the real client): the settle time never starts before a GC's
// real end at DigitalOcean's one-second timestamp resolution, a status it does not know counts as
// active, and a shape refusal that repeats identically is tried once more, not until the budget ends.
import * as assert from 'assert';
import { DigitalOceanClient, GarbageCollection, describeGcStatus } from '../../tasks/common/services/digitalocean';
import { DO_TIMESTAMP_RESOLUTION_MS, GcWatcher, countsAsActive, settleStart } from '../../tasks/common/workflows/gcwatch/watcher';
import { hostileDoApi, json } from '../helpers/hostile-do';

const TOKEN = 'dop_v1_unit_watcher_token';
/** A DigitalOcean stamp: to the second, truncated. */
const stamp = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const gcAt = (status: string, updatedMs: number): GarbageCollection => ({
  uuid: 'mew-mew-id',
  registry_name: 'reg',
  status,
  created_at: stamp(updatedMs - 60_000),
  updated_at: stamp(updatedMs),
  blobs_deleted: 0,
  freed_bytes: 0,
});
const notFound = { id: 'not_found', message: 'The resource you requested could not be found.' };

describe('unit settleStart (one-second timestamps)', () => {
  const t0 = Date.parse('2026-01-01T12:00:00Z');

  it('a GC stamped 12:00:00 that really ended at 12:00:00.900: the settle never starts before 12:00:00.900', () => {
    const realEnd = t0 + 900;
    // The task looked at 12:00:00.950 (the GC had ended): counting from its updated_at would be 900 ms early.
    const lookedAt = t0 + 950;
    const from = settleStart({ updatedAt: '2026-01-01T12:00:00Z', lookedAt });
    assert.ok(from >= realEnd, `settle from ${from - t0} ms, real end ${realEnd - t0} ms`);
    assert.strictEqual(from, lookedAt);
    // Looked at much later: the stamp plus its resolution bounds the real end.
    assert.strictEqual(settleStart({ updatedAt: '2026-01-01T12:00:00Z', lookedAt: t0 + 30_000 }), t0 + DO_TIMESTAMP_RESOLUTION_MS);
  });

  it('a GC the task saw end counts from the first moment it knew, whatever its stamp says', () => {
    assert.strictEqual(settleStart({ knownEndedAt: t0 + 1700, updatedAt: '2026-01-01T12:00:00Z', lookedAt: t0 + 1700 }), t0 + 1700);
  });

  it('an unreadable stamp counts from the look', () => {
    assert.strictEqual(settleStart({ updatedAt: 'soon', lookedAt: t0 }), t0);
  });
});

describe('unit GcWatcher (scripted DigitalOcean API)', function () {
  this.timeout(20_000);
  let srv: Awaited<ReturnType<typeof hostileDoApi>> | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });
  const client = (url: string, maxAttempts = 2) =>
    new DigitalOceanClient(
      { token: TOKEN, apiUrl: url, source: 'env' },
      { maxAttempts, initialBackoffSeconds: 0.01, maxBackoffSeconds: 0.02, requestTimeoutMs: 3000 },
    );

  it('the settle starts no earlier than the real end of the GC, though its final updated_at is stamped to the second before it', async () => {
    let endedAt: number | undefined;
    let looks = 0;
    srv = await hostileDoApi((req, res) => {
      if (req.url!.includes('/garbage-collections')) return json(res, 200, { garbage_collections: [gcAt('succeeded', endedAt!)] });
      looks++;
      if (looks < 3) return json(res, 200, { garbage_collection: gcAt('scanning manifests', Date.now()) });
      endedAt ??= Date.now(); // the real end: the first answer that no GC is active
      return json(res, 404, notFound);
    });
    const w = new GcWatcher(client(srv.url), 'reg', { follow: 'any', untilTerminal: false });
    const signal = new AbortController().signal;
    assert.ok((await w.look(signal)).active);
    assert.ok((await w.look(signal)).active);
    const ended = await w.look(signal);
    assert.strictEqual(ended.endedNow, true);
    assert.strictEqual(ended.watched?.status, 'succeeded');
    assert.ok(w.settleFrom! >= endedAt!, `settle from ${w.settleFrom}, real end ${endedAt}`);
    assert.ok(Date.parse(ended.watched!.updated_at) <= endedAt!, 'the final record is stamped at or before the real end');
  });

  it('a status it does not know counts as active and is named as such; only succeeded, failed, cancelled end a GC', async () => {
    srv = await hostileDoApi((_q, res) => json(res, 200, { garbage_collection: gcAt('compacting', Date.now()) }));
    const w = new GcWatcher(client(srv.url), 'reg', { follow: 'any', untilTerminal: false });
    const look = await w.look(new AbortController().signal);
    assert.strictEqual(look.active?.status, 'compacting');
    assert.strictEqual(look.endedNow, false);
    assert.strictEqual(describeGcStatus('compacting'), "'compacting' (a status this task does not know: counted as active)");
    assert.strictEqual(describeGcStatus('waiting for write JWTs to expire'), "'waiting for write JWTs to expire'");
    for (const s of ['requested', 'cancelling', 'compacting', 'waiting for delete requests']) assert.ok(countsAsActive(s), s);
    for (const s of ['succeeded', 'failed', 'cancelled']) assert.ok(!countsAsActive(s), s);
  });

  it('a GC run watches its own GC until the list has its terminal record', async () => {
    let listed = 'scanning manifests';
    srv = await hostileDoApi((req, res) => {
      if (req.url!.includes('/garbage-collections')) return json(res, 200, { garbage_collections: [gcAt(listed, Date.now())] });
      return json(res, 404, notFound);
    });
    const w = new GcWatcher(client(srv.url), 'reg', { follow: 'one', untilTerminal: true });
    w.watch(gcAt('requested', Date.now()));
    const signal = new AbortController().signal;
    const first = await w.look(signal);
    assert.strictEqual(first.endedNow, false, 'the list still says scanning manifests');
    listed = 'succeeded';
    const second = await w.look(signal);
    assert.strictEqual(second.endedNow, true);
    assert.strictEqual(second.watched?.status, 'succeeded');
  });

  it('the same shape refusal twice is not retried further (budget 6), and it names the field and why in one line', async () => {
    srv = await hostileDoApi((_q, res) => json(res, 200, { garbage_collection: { ...gcAt('requested', Date.now()), uuid: 'x'.repeat(300) } }));
    await assert.rejects(client(srv.url, 6).getActiveGc('reg'), (e: Error) => {
      assert.match(e.message, /`uuid` has 300 characters \(at most 128\)/);
      assert.match(e.message, /not retried further/);
      assert.ok(!e.message.includes('\n') && !e.message.includes('xxxx'), e.message);
      return true;
    });
    assert.strictEqual(srv.calls.length, 2, srv.calls.join('\n'));
  });

  it('a shape refusal followed by a good answer is retried like any transient fault', async () => {
    let n = 0;
    srv = await hostileDoApi((_q, res) => json(res, 200, { garbage_collection: { ...gcAt('requested', Date.now()), ...(n++ === 0 ? { status: 42 } : {}) } }));
    const gc = await client(srv.url, 6).getActiveGc('reg');
    assert.strictEqual(gc?.uuid, 'mew-mew-id');
  });
});

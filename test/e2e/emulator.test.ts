import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { startEmulator, Emulator, EmulatorOptions } from '../harness/emulator';
import { startRegistry, pushTinyImage, run, RealRegistry } from '../harness/registry';
import { tempDir, tools } from '../harness/paths';
import { call } from '../helpers/emulator-call';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FAST = [
  { status: 'requested', seconds: 0.1 },
  { status: 'waiting for write JWTs to expire', seconds: 0.1 },
  { status: 'scanning manifests', seconds: 0.1 },
];

async function tokenFor(emu: Emulator, scopes: string[], user = emu.token, pass = emu.token) {
  const q = new URLSearchParams({ service: 'registry.digitalocean.com' });
  for (const s of scopes) q.append('scope', s);
  const res = await fetch(`${emu.apiUrl}/v2/registry/auth?${q}`, {
    headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` },
  });
  return { status: res.status, json: (await res.json()) as any };
}

describe('emulator', function () {
  this.timeout(30_000);
  let emu: Emulator | undefined;
  const start = async (o: EmulatorOptions = {}) => (emu = await startEmulator(o));
  afterEach(async () => {
    await emu?.stop();
    emu = undefined;
  });

  it('auth: 401 without token, 403 without scope, DO error shape and rate headers', async () => {
    const e = await start({ extraTokens: { readonly_tok: ['registry:read'] } });
    const r1 = await call(e, 'GET', '/v2/registries/demo-registry/garbage-collection', undefined, null);
    assert.strictEqual(r1.status, 401);
    assert.strictEqual(r1.json.id, 'unauthorized');
    assert.ok(r1.json.request_id && r1.headers.get('x-request-id'));
    const r2 = await call(e, 'POST', '/v2/registries/demo-registry/garbage-collection', {}, 'readonly_tok');
    assert.strictEqual(r2.status, 403);
    assert.strictEqual(r2.json.id, 'forbidden');
    const r3 = await call(e, 'GET', '/v2/registries/demo-registry');
    assert.strictEqual(r3.status, 200);
    assert.strictEqual(r3.json.registry.name, 'demo-registry');
    assert.strictEqual(r3.headers.get('ratelimit-limit'), '5000');
    assert.ok(Number(r3.headers.get('ratelimit-remaining')) < 5000);
    assert.ok(Number(r3.headers.get('ratelimit-reset')) > Date.now() / 1000);
    assert.strictEqual((await call(e, 'GET', '/v2/registries/nope')).json.message, 'registry does not exist');
  });

  it('GET /v2/registry answers 412 with several registries, 200 with one', async () => {
    const e = await start({ registries: ['alpha', 'beta'] });
    const r = await call(e, 'GET', '/v2/registry');
    assert.strictEqual(r.status, 412);
    assert.strictEqual(r.json.id, 'precondition_failed');
    assert.match(r.json.message, /multiple registries/);
    const list = await call(e, 'GET', '/v2/registries');
    assert.deepStrictEqual(
      list.json.registries.map((x: any) => x.name),
      ['alpha', 'beta'],
    );
    await e.stop();
    const one = await start();
    const r1 = await call(one, 'GET', '/v2/registry');
    assert.strictEqual(r1.status, 200);
    assert.strictEqual(r1.json.registry.name, 'demo-registry');
    assert.ok(r1.json.registry.subscription.tier.slug);
  });

  it('GC: 404 when none, start 201, 409 while active, walks the steps to succeeded', async () => {
    const e = await start({ gcSteps: FAST });
    const none = await call(e, 'GET', '/v2/registries/demo-registry/garbage-collection');
    assert.strictEqual(none.status, 404);
    assert.strictEqual(none.json.id, 'not_found');
    const bad = await call(e, 'POST', '/v2/registries/demo-registry/garbage-collection', { type: 'everything' });
    assert.strictEqual(bad.status, 422);
    const started = await call(e, 'POST', '/v2/registries/demo-registry/garbage-collection', { type: 'untagged manifests and unreferenced blobs' });
    assert.strictEqual(started.status, 201);
    const gc = started.json.garbage_collection;
    assert.strictEqual(gc.status, 'requested');
    assert.strictEqual(gc.type, 'untagged manifests and unreferenced blobs');
    assert.match(gc.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Stamped to the second, as DigitalOcean stamps a GC.
    assert.match(gc.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const again = await call(e, 'POST', '/v2/registry/demo-registry/garbage-collection');
    assert.strictEqual(again.status, 409);
    assert.strictEqual(again.json.id, 'conflict');
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = await call(e, 'GET', '/v2/registry/demo-registry/garbage-collection'); // legacy path
      if (r.status === 404) break;
      seen.add(r.json.garbage_collection.status);
      await sleep(25);
    }
    assert.ok(seen.has('scanning manifests'), [...seen].join(','));
    const list = await call(e, 'GET', '/v2/registries/demo-registry/garbage-collections');
    assert.strictEqual(list.json.garbage_collections[0].uuid, gc.uuid);
    assert.strictEqual(list.json.garbage_collections[0].status, 'succeeded');
    assert.strictEqual(list.json.meta.total, 1);
    assert.strictEqual(list.json.links, undefined);
  });

  it('GC list: newest first and absolute page links', async () => {
    const e = await start();
    e.addPastGcs('demo-registry', [10, 20, 30]);
    e.startGc(undefined, { steps: [{ status: 'scanning manifests', seconds: 60 }] });
    const p1 = await call(e, 'GET', '/v2/registries/demo-registry/garbage-collections?per_page=2');
    assert.strictEqual(p1.json.meta.total, 4);
    assert.strictEqual(p1.json.garbage_collections[0].status, 'scanning manifests');
    assert.ok(p1.json.links.pages.next.startsWith(`${e.apiUrl}/v2/registries/demo-registry/garbage-collections?page=2`));
    const p2 = await call(e, 'GET', p1.json.links.pages.next.slice(e.apiUrl.length));
    assert.strictEqual(p2.json.garbage_collections.length, 2);
    assert.strictEqual(p2.json.links.pages.next, undefined);
    const times = [...p1.json.garbage_collections, ...p2.json.garbage_collections].map((g: any) => Date.parse(g.created_at));
    assert.deepStrictEqual(
      times,
      [...times].sort((a, b) => b - a),
    );
  });

  it('GC cancel: cancelling, then cancelled; unknown uuid 404', async () => {
    const e = await start({ gcSteps: [{ status: 'scanning manifests', seconds: 60 }] });
    const { json } = await call(e, 'POST', '/v2/registries/demo-registry/garbage-collection', {});
    assert.strictEqual(json.garbage_collection.type, 'unreferenced blobs only');
    const uuid = json.garbage_collection.uuid;
    assert.strictEqual((await call(e, 'PUT', `/v2/registries/demo-registry/garbage-collection/nope`, { cancel: true })).status, 404);
    const c = await call(e, 'PUT', `/v2/registries/demo-registry/garbage-collection/${uuid}`, { cancel: true });
    assert.strictEqual(c.status, 200);
    assert.strictEqual(c.json.garbage_collection.status, 'cancelling');
    await sleep(600);
    assert.strictEqual(e.gcs()[0].status, 'cancelled');
    assert.strictEqual(e.activeGc(), undefined);
  });

  it('legacyOnly: new paths 404 "could not be routed", old ones work', async () => {
    const e = await start({ legacyOnly: true });
    const r = await call(e, 'GET', '/v2/registries/demo-registry/garbage-collection');
    assert.strictEqual(r.status, 404);
    assert.match(r.json.message, /could not be routed/);
    assert.strictEqual((await call(e, 'POST', '/v2/registry/demo-registry/garbage-collection', {})).status, 201);
  });

  it('rate limit: 429 with retry-after over the per-minute budget, per token', async () => {
    const e = await start({ rateLimitPerMinute: 3, extraTokens: { other: ['registry:read'] } });
    for (let i = 0; i < 3; i++) assert.strictEqual((await call(e, 'GET', '/v2/registries')).status, 200);
    const r = await call(e, 'GET', '/v2/registries');
    assert.strictEqual(r.status, 429);
    assert.strictEqual(r.json.id, 'too_many_requests');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 60, String(ra));
    assert.strictEqual((await call(e, 'GET', '/v2/registries', undefined, 'other')).status, 200);
    assert.strictEqual(e.requests.filter((x) => x.token === e.token).length, 4);
  });

  it('faults: 5xx, 429, malformed, drop, slow are consumed in order', async () => {
    const e = await start();
    e.fault('gc-get', { kind: '5xx', status: 502 });
    e.fault('gc-get', { kind: '429', retryAfterSeconds: 7 });
    e.fault('gc-get', { kind: 'malformed' });
    e.fault('gc-get', { kind: 'drop' });
    e.fault('gc-get', { kind: 'slow', delayMs: 200 });
    const p = '/v2/registries/demo-registry/garbage-collection';
    assert.strictEqual((await call(e, 'GET', p)).status, 502);
    const r429 = await call(e, 'GET', p);
    assert.strictEqual(r429.status, 429);
    assert.strictEqual(r429.headers.get('retry-after'), '7');
    const mal = await call(e, 'GET', p);
    assert.strictEqual(mal.status, 200);
    assert.strictEqual(mal.json, undefined);
    await assert.rejects(call(e, 'GET', p));
    const t0 = Date.now();
    assert.strictEqual((await call(e, 'GET', p)).status, 404);
    assert.ok(Date.now() - t0 >= 180);
    assert.strictEqual((await call(e, 'GET', p)).status, 404);
    assert.deepStrictEqual(
      e.requests.filter((x) => x.endpoint === 'gc-get').map((x) => x.status),
      [502, 429, 200, 0, 404, 404],
    );
  });

  it('answer faults: DigitalOcean status errors, raw pages, a trickle; stale records are listed but not active', async () => {
    const e = await start();
    e.fault('gc-start', { kind: 'status', status: 412, message: 'registry is read-only' });
    e.fault('gc-get', { kind: 'raw' });
    e.fault('gc-get', { kind: 'raw', status: 200, contentType: 'text/plain', body: 'hello' });
    e.fault('gc-get', { kind: 'trickle', delayMs: 100 });
    const p = '/v2/registries/demo-registry/garbage-collection';
    const refused = await call(e, 'POST', p, { type: 'unreferenced blobs only' });
    assert.strictEqual(refused.status, 412);
    assert.strictEqual(refused.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepStrictEqual([refused.json.id, refused.json.message], ['precondition_failed', 'registry is read-only']);
    const page = await call(e, 'GET', p);
    assert.strictEqual(page.status, 404);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.text, /<html>/);
    const text = await call(e, 'GET', p);
    assert.deepStrictEqual([text.status, text.text], [200, 'hello']);
    // The trickle: headers at once, then a byte per interval, never a whole body.
    const ac = new AbortController();
    const res = await fetch(`${e.apiUrl}${p}`, { headers: { authorization: `Bearer ${e.token}` }, signal: ac.signal });
    assert.strictEqual(res.status, 200);
    const reader = res.body!.getReader();
    const t0 = Date.now();
    let got = 0;
    while (got < 3) got += (await reader.read()).value?.length ?? 0;
    assert.ok(Date.now() - t0 >= 150, 'bytes arrive one per interval');
    ac.abort();
    const stale = e.addStaleGc('demo-registry', 'scanning manifests', 86_400);
    assert.strictEqual(e.activeGc('demo-registry'), undefined);
    assert.strictEqual((await call(e, 'GET', p)).status, 404);
    const list = await call(e, 'GET', '/v2/registries/demo-registry/garbage-collections');
    assert.strictEqual(list.json.garbage_collections[0].uuid, stale.uuid);
    assert.strictEqual(list.json.garbage_collections[0].status, 'scanning manifests');
    assert.ok(Date.now() - Date.parse(list.json.garbage_collections[0].updated_at) >= 86_000_000);
  });

  it('token endpoint: push refused during GC and the tail, pull granted; bad creds 401', async () => {
    const e = await start({ tailSeconds: 0.4 });
    const push = ['repository:demo-registry/app:pull,push'];
    const pull = ['repository:demo-registry/app:pull'];
    assert.strictEqual((await tokenFor(e, push)).status, 200);
    const bad = await tokenFor(e, pull, 'x', 'wrong');
    assert.strictEqual(bad.status, 401);
    assert.deepStrictEqual(bad.json, { id: 'Unauthorized', message: 'Unable to authenticate you' });
    e.startGc(undefined, { finalStatus: 'waiting for delete requests', steps: [] });
    assert.strictEqual(e.activeGc()!.status, 'waiting for delete requests');
    const refused = await tokenFor(e, push);
    assert.strictEqual(refused.status, 401);
    assert.deepStrictEqual(refused.json, { id: 'Unauthorized', message: 'Unable to authenticate you' });
    const granted = await tokenFor(e, pull);
    assert.strictEqual(granted.status, 200);
    assert.ok(granted.json.token && granted.json.token === granted.json.access_token);
    assert.strictEqual(granted.json.expires_in, 300);
    e.finishGc();
    assert.strictEqual(e.activeGc(), undefined);
    assert.strictEqual((await tokenFor(e, push)).status, 401); // tail
    await sleep(450);
    assert.strictEqual((await tokenFor(e, push)).status, 200);
    // docker credentials: read-only ones never get push
    const ro = await call(e, 'GET', '/v2/registry/docker-credentials?read_write=false');
    const [u, pw] = Buffer.from(ro.json.auths['registry.digitalocean.com'].auth, 'base64').toString().split(':');
    assert.strictEqual((await tokenFor(e, pull, u, pw)).status, 200);
    assert.strictEqual((await tokenFor(e, push, u, pw)).status, 401);
    assert.deepStrictEqual(
      e.tokenRequests.map((t) => t.granted),
      [true, false, false, true, false, true, true, false],
    );
  });

  it('timeline: stages move per the script; auth required', async () => {
    const e = await start();
    e.setStages([
      { name: 'Build', state: 'completed' },
      { name: 'AttestStaging', state: 'inProgress', current: true },
      {
        name: 'RegistryMaintenance',
        displayName: 'Registry maintenance',
        state: 'pending',
        startAfterSeconds: 0.1,
        completeAfterSeconds: 0.3,
        result: 'succeeded',
      },
    ]);
    const url = `${e.collectionUri}${e.project}/_apis/build/builds/${e.buildId}/timeline?api-version=7.1`;
    assert.strictEqual((await fetch(url)).status, 401);
    const get = async () => ((await (await fetch(url, { headers: { authorization: `Bearer ${e.buildAccessToken}` } })).json()) as any).records as any[];
    const stage = (recs: any[]) => recs.find((r) => r.identifier === 'RegistryMaintenance');
    let recs = await get();
    assert.strictEqual(stage(recs).state, 'pending');
    assert.strictEqual(stage(recs).name, 'Registry maintenance');
    assert.strictEqual(stage(recs).result, null);
    assert.strictEqual(recs.find((r) => r.identifier === 'Build').result, 'succeeded');
    const job = recs.find((r) => r.type === 'Job');
    const phase = recs.find((r) => r.id === job.parentId);
    assert.strictEqual(phase.type, 'Phase');
    assert.strictEqual(recs.find((r) => r.id === phase.parentId).identifier, 'AttestStaging');
    await sleep(150);
    assert.strictEqual(stage(await get()).state, 'inProgress');
    await sleep(250);
    recs = await get();
    assert.strictEqual(stage(recs).state, 'completed');
    assert.strictEqual(stage(recs).result, 'succeeded');
    const basic = Buffer.from(`:${e.buildAccessToken}`).toString('base64');
    assert.strictEqual((await fetch(url.replace(`/${e.buildId}/`, '/999/'), { headers: { authorization: `Basic ${basic}` } })).status, 404);
  });

  describe('registry front (real registry + crane)', () => {
    let reg: RealRegistry;
    before(async () => {
      reg = await startRegistry();
    });
    after(async () => {
      await reg?.stop();
    });

    it('challenges, then proxies crane push/digest through the token flow; push refused during GC', async () => {
      const e = await start({ upstreamRegistry: reg.url });
      const ping = await fetch(`http://${e.registryHost}/v2/`);
      assert.strictEqual(ping.status, 401);
      assert.strictEqual(ping.headers.get('www-authenticate'), `Bearer realm="${e.apiUrl}/v2/registry/auth",service="registry.digitalocean.com"`);
      const m = await fetch(`http://${e.registryHost}/v2/demo-registry/app/manifests/v1`, { method: 'PUT' });
      assert.strictEqual(m.status, 401);
      assert.match(m.headers.get('www-authenticate')!, /scope="repository:demo-registry\/app:pull,push"/);
      assert.strictEqual(((await m.json()) as any).errors[0].code, 'UNAUTHORIZED');
      const pullTok = (await tokenFor(e, ['repository:demo-registry/app:pull'])).json.token;
      const ins = await fetch(`http://${e.registryHost}/v2/demo-registry/app/blobs/uploads/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${pullTok}` },
      });
      assert.match(ins.headers.get('www-authenticate')!, /error="insufficient_scope"/);

      const dockerConfig = tempDir('dockercfg');
      try {
        const auth = Buffer.from(`${e.token}:${e.token}`).toString('base64');
        fs.writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [e.registryHost]: { auth } } }));
        const env = { DOCKER_CONFIG: dockerConfig };
        const prev = process.env.DOCKER_CONFIG;
        process.env.DOCKER_CONFIG = dockerConfig; // pushTinyImage runs crane with process.env
        let digest: string;
        try {
          digest = await pushTinyImage(e.registryHost, 'demo-registry/app:v1');
        } finally {
          if (prev === undefined) delete process.env.DOCKER_CONFIG;
          else process.env.DOCKER_CONFIG = prev;
        }
        assert.match(digest, /^sha256:[0-9a-f]{64}$/);
        const { stdout } = await run(tools.crane, ['digest', `${e.registryHost}/demo-registry/app:v1`, '--insecure'], env);
        assert.strictEqual(stdout.trim(), digest);
        // the bytes really are in the upstream registry
        const up = await fetch(`${reg.url}/v2/demo-registry/app/manifests/v1`, {
          method: 'HEAD',
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' },
        });
        assert.strictEqual(up.headers.get('docker-content-digest'), digest);

        e.startGc(undefined, { steps: [{ status: 'waiting for write JWTs to expire', seconds: 60 }] });
        await assert.rejects(run(tools.crane, ['tag', `${e.registryHost}/demo-registry/app:v1`, 'v2', '--insecure'], env), /401/);
        const again = await run(tools.crane, ['digest', `${e.registryHost}/demo-registry/app:v1`, '--insecure'], env);
        assert.strictEqual(again.stdout.trim(), digest);
        assert.ok(e.tokenRequests.some((t) => !t.granted && t.scopes.some((s) => s.includes('push'))));
      } finally {
        fs.rmSync(dockerConfig, { recursive: true, force: true });
      }
    });

    it('both cosign versions attest through the front when idle, and hit the incident 401 during a GC', async () => {
      const e = await start({ upstreamRegistry: reg.url });
      const dir = tempDir('cosign');
      try {
        const auth = Buffer.from(`${e.token}:${e.token}`).toString('base64');
        fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [e.registryHost]: { auth } } }));
        const env = { DOCKER_CONFIG: dir, COSIGN_PASSWORD: 'pw', HOME: dir };
        const prev = process.env.DOCKER_CONFIG;
        process.env.DOCKER_CONFIG = dir;
        let digest: string;
        try {
          digest = await pushTinyImage(e.registryHost, 'demo-registry/signed:v1');
        } finally {
          if (prev === undefined) delete process.env.DOCKER_CONFIG;
          else process.env.DOCKER_CONFIG = prev;
        }
        const ref = `${e.registryHost}/demo-registry/signed@${digest}`;
        const predicate = path.join(dir, 'predicate.json');
        fs.writeFileSync(predicate, '{"ok":true}');
        for (const cosign of ['cosign2', 'cosign3'] as const) {
          const keyPrefix = path.join(dir, cosign);
          await run(tools[cosign], ['generate-key-pair', '--output-key-prefix', keyPrefix], env);
          const args = [
            'attest',
            '--key',
            `${keyPrefix}.key`,
            '--predicate',
            predicate,
            '--type',
            'https://example.com/emulator/v1',
            '--allow-insecure-registry',
            '--allow-http-registry',
          ];
          if (cosign === 'cosign3') args.push('--use-signing-config=false');
          args.push('--tlog-upload=false', '-y', ref);
          await run(tools[cosign], args, env);
          e.startGc(undefined, { steps: [{ status: 'waiting for write JWTs to expire', seconds: 60 }] });
          await assert.rejects(run(tools[cosign], args, env), /v2\/registry\/auth.*401 Unauthorized/s);
          e.finishGc();
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

// RegistryCleanup@1 end to end: the bundled task, the real registry (with and without deletion),
// the emulator's DigitalOcean repository API over it, and signatures made by the real cosign. It
// removes the run's tags and their signatures, keeps a tag another run moved or another tag shares,
// waits out a GC before deleting through DigitalOcean, reports a registry that does not delete, and
// never deletes through DigitalOcean what lives on another registry.
import * as assert from 'assert';
import * as fs from 'fs';
import { CLEANUP_TASK, tools } from '../harness/paths';
import { RealRegistry, pushManyTags, pushTinyImage, run, startRegistry } from '../harness/registry';
import { TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { doEndpointEnv, timelineEnv } from '../harness/pipeline-env';
import { COSIGN_VERSIONS, DO_ID, uniqueRepo, useCosignFixture } from './cosignSupport';

const NO_DELETE_ID = 'do-nodelete';

describe('RegistryCleanup@1 end-to-end (bundled task, real registry, DigitalOcean API emulated)', function () {
  this.timeout(90_000);
  const f = useCosignFixture({
    tokenScopes: ['registry:read', 'registry:update', 'registry:delete'],
    extraTokens: { nodelete: ['registry:read', 'registry:update'] },
  });

  function cleanup(inputs: Record<string, string>, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<TaskRun> {
    const base = { allowHttpRegistry: 'true', pollIntervalSeconds: '1', settleSeconds: '2', registry: 'demo-registry' };
    return runTask(CLEANUP_TASK, { inputs: { ...base, ...inputs }, env: { ...agentEnv(), ...env }, timeoutMs });
  }
  const viaDigitalOcean = { digitalOceanConnection: DO_ID, useDigitalOceanCredentials: 'true' };
  const doEnv = () => doEndpointEnv(f.emu, DO_ID);

  /** The tags the upstream registry lists for a repository ([] when it has none left). */
  async function upstreamTags(reg: RealRegistry, repo: string): Promise<string[]> {
    try {
      return (await run(tools.crane, ['ls', `${reg.host}/${repo}`, '--insecure'])).stdout.split('\n').filter(Boolean).sort();
    } catch {
      return [];
    }
  }

  /** Signs an image with the real cosign through the front: its sha256-<hex>.sig (or bundle) tag appears. */
  async function signWith(cosign: string, pinned: string): Promise<void> {
    const offline = cosign === tools.cosign3 ? ['--use-signing-config=false', '--tlog-upload=false'] : ['--tlog-upload=false'];
    await run(cosign, ['sign', '--yes', '--key', f.keys.key, ...offline, '--allow-http-registry', pinned], {
      COSIGN_PASSWORD: f.keys.password,
      DOCKER_CONFIG: f.frontConfig,
    });
  }
  const sign = (pinned: string) => signWith(tools.cosign3, pinned);

  it('DigitalOcean API: removes the run tags and their signatures; a tag another run moved is kept and reported', async () => {
    const repo = uniqueRepo('clean');
    const d1 = await pushTinyImage(f.reg.host, `${repo}:1.0`);
    const d2 = await pushTinyImage(f.reg.host, `${repo}:1.1`);
    const pinned1 = `${f.emu.registryHost}/${repo}@${d1}`;
    await sign(pinned1);
    const signed = await upstreamTags(f.reg, repo);
    assert.ok(
      signed.some((t) => t.startsWith(`sha256-${d1.slice(7)}`)),
      `cosign signed it: ${signed.join(', ')}`,
    );
    const moved = await pushTinyImage(f.reg.host, `${repo}:1.2`); // another run's push, after ours
    const images = [`${f.emu.registryHost}/${repo}:1.0`, `${f.emu.registryHost}/${repo}:1.1`, `${f.emu.registryHost}/${repo}:1.2`];
    const digests = [pinned1, `${f.emu.registryHost}/${repo}@${d2}`, `${f.emu.registryHost}/${repo}@sha256:${'0'.repeat(64)}`];
    const r = await cleanup({ ...viaDigitalOcean, images: images.join('\n'), digests: digests.join(',') }, doEnv());
    assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
    assert.strictEqual(r.outputs.removedTags, `${images[0]},${images[1]}`);
    assert.strictEqual(r.outputs.keptTags, images[2]);
    assert.ok(
      r.warnings.some((w) => w.includes(images[2]) && w.includes(moved) && /another run moved it/.test(w)),
      describeRun(r),
    );
    assert.deepStrictEqual(await upstreamTags(f.reg, repo), ['1.2'], 'only the moved tag is left, signatures gone');
    assert.ok(
      f.emu.requests.some((q) => q.endpoint === 'tag-delete'),
      'deleted through the DigitalOcean API',
    );
    const summary = r.commands.find((c) => c.command === 'task.uploadsummary');
    assert.ok(summary && /2 removed, 1 kept, 0 refused/.test(fs.readFileSync(summary.message, 'utf8')));
  });

  it('DigitalOcean API: waits out a running GC before the first delete', async () => {
    const repo = uniqueRepo('clean-gc');
    await pushTinyImage(f.reg.host, `${repo}:1.0`);
    f.emu.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 3 }] });
    const r = await cleanup({ ...viaDigitalOcean, images: `${f.emu.registryHost}/${repo}:1.0` }, doEnv());
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    assert.match(r.stdout, /GC guard \(before deleting\)/);
    assert.match(r.stdout, /GC guard: Clear to write: GC ended/);
    assert.deepStrictEqual(await upstreamTags(f.reg, repo), []);
  });

  it('a token without registry:delete (403): a warning naming the tag, its digest and the remedy, SucceededWithIssues; Failed only with onRefused: fail', async () => {
    const repo = uniqueRepo('clean-403');
    const d = await pushTinyImage(f.reg.host, `${repo}:1.0`);
    const env: Record<string, string> = {
      ...doEndpointEnv(f.emu, NO_DELETE_ID),
      [`ENDPOINT_AUTH_PARAMETER_${NO_DELETE_ID}_APITOKEN`]: 'nodelete',
      [`ENDPOINT_AUTH_${NO_DELETE_ID}`]: JSON.stringify({ scheme: 'Token', parameters: { apitoken: 'nodelete' } }),
    };
    const image = `${f.emu.registryHost}/${repo}:1.0`;
    const inputs = { digitalOceanConnection: NO_DELETE_ID, useDigitalOceanCredentials: 'true', images: image };
    const r = await cleanup({ ...inputs, onRefused: 'warn' }, env);
    assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
    const w = r.warnings.find((x) => /refused to delete/.test(x));
    assert.ok(w && w.includes(image) && w.includes(d) && /registry:delete/.test(w) && /doctl registry repository delete-tag/.test(w), describeRun(r));
    assert.strictEqual(r.outputs.keptTags, image);
    assert.strictEqual(r.outputs.removedTags, '');
    const failed = await cleanup({ ...inputs, onRefused: 'fail' }, env);
    assert.strictEqual(failed.result, 'Failed', describeRun(failed));
    assert.match(failed.resultMessage, /1 refused.*onRefused: fail/);
    assert.deepStrictEqual(await upstreamTags(f.reg, repo), ['1.0']);
  });

  it('an image on another registry while a DigitalOcean connection is configured: removed on its own registry, never through the DigitalOcean API', async () => {
    const plain = await startRegistry();
    try {
      const doRepo = uniqueRepo('clean-mixed');
      await pushTinyImage(f.reg.host, `${doRepo}:1.0`);
      // Named like a repository of the DigitalOcean registry on purpose: only the host tells them apart.
      const otherRepo = `demo-registry/other-${process.pid}`;
      await pushTinyImage(plain.host, `${otherRepo}:1.0`);
      await pushTinyImage(f.reg.host, `${otherRepo}:1.0`);
      const images = [`${f.emu.registryHost}/${doRepo}:1.0`, `${plain.host}/${otherRepo}:1.0`];
      const before = f.emu.requests.length;
      const r = await cleanup({ ...viaDigitalOcean, images: images.join('\n') }, doEnv());
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.strictEqual(r.outputs.removedTags, images.join(','));
      assert.match(r.stdout, new RegExp(`\\[${images[0].replace(/[.]/g, '\\.')}\\] path: DigitalOcean API \\(registry demo-registry\\)`));
      assert.match(
        r.stdout,
        new RegExp(
          `\\[${images[1].replace(/[.]/g, '\\.')}\\] path: OCI distribution API of ${plain.host.replace(/[.]/g, '\\.')} \\(not a host of the DigitalOcean registry\\)`,
        ),
      );
      const deletes = f.emu.requests.slice(before).filter((q) => q.endpoint === 'tag-delete' || q.endpoint === 'manifest-delete');
      assert.ok(deletes.length >= 1, 'the DigitalOcean image went through the API');
      assert.ok(
        !deletes.some((q) => q.path.includes('other-')),
        `no DigitalOcean delete for the other registry's image: ${deletes.map((q) => q.path).join(', ')}`,
      );
      assert.deepStrictEqual(await upstreamTags(plain, otherRepo), [], 'removed on its own registry');
      assert.deepStrictEqual(await upstreamTags(f.reg, otherRepo), ['1.0'], 'the same name in the DigitalOcean registry is untouched');
      assert.deepStrictEqual(await upstreamTags(f.reg, doRepo), []);
    } finally {
      await plain.stop();
    }
  });

  for (const [label, cosign] of COSIGN_VERSIONS) {
    it(`DigitalOcean API, ${label}: a signed digest that latest shares keeps its signature, and cosign verify of latest passes`, async () => {
      const repo = uniqueRepo('clean-shared');
      const d = await pushTinyImage(f.reg.host, `${repo}:1.0`);
      await run(tools.crane, ['tag', `${f.reg.host}/${repo}:1.0`, 'latest', '--insecure']);
      await signWith(cosign, `${f.emu.registryHost}/${repo}@${d}`);
      const image = `${f.emu.registryHost}/${repo}:1.0`;
      const r = await cleanup({ ...viaDigitalOcean, images: image, digests: `${f.emu.registryHost}/${repo}@${d}` }, doEnv());
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.strictEqual(r.outputs.removedTags, image);
      assert.match(r.stdout, new RegExp(`removed \\(${d}\\): signatures kept: latest still point\\(s\\) at ${d}`));
      const left = await upstreamTags(f.reg, repo);
      assert.ok(!left.includes('1.0') && left.includes('latest') && left.some((t) => t.startsWith(`sha256-${d.slice(7)}`)), left.join(', '));
      await run(cosign, ['verify', '--key', f.keys.pub, '--insecure-ignore-tlog', '--allow-http-registry', `${f.emu.registryHost}/${repo}:latest`], {
        DOCKER_CONFIG: f.frontConfig,
      });
    });
  }

  it('a tag that moved while the task waited for a stage is kept and reported; nothing of the new image is removed', async () => {
    const repo = uniqueRepo('clean-moved');
    const d1 = await pushTinyImage(f.reg.host, `${repo}:1.0`);
    f.emu.setStages([
      { name: 'RegistryMaintenance', state: 'inProgress' },
      { name: 'Cleanup', state: 'inProgress', current: true },
    ]);
    let moved: Promise<string> | undefined;
    const image = `${f.emu.registryHost}/${repo}:1.0`;
    const r = await runTask(CLEANUP_TASK, {
      inputs: {
        ...viaDigitalOcean,
        allowHttpRegistry: 'true',
        pollIntervalSeconds: '1',
        settleSeconds: '0',
        images: image,
        digests: `${f.emu.registryHost}/${repo}@${d1}`,
        waitForStages: 'RegistryMaintenance',
      },
      env: { ...agentEnv(), ...doEnv(), ...timelineEnv(f.emu, 'Cleanup') },
      timeoutMs: 60_000,
      onLine: (line) => {
        if (moved || !/GC guard \(before deleting\)/.test(line)) return;
        // Another run pushes the tag while this one waits; then the stage it waits for completes.
        moved = pushTinyImage(f.reg.host, `${repo}:1.0`).then((d2) => {
          f.emu.setStages([
            { name: 'RegistryMaintenance', state: 'completed', result: 'succeeded' },
            { name: 'Cleanup', state: 'inProgress', current: true },
          ]);
          return d2;
        });
      },
    });
    assert.ok(moved, describeRun(r));
    const d2 = await moved;
    assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
    assert.strictEqual(r.outputs.keptTags, image);
    assert.ok(
      r.warnings.some((w) => w.includes(image) && /moved while the task waited/.test(w) && w.includes(d1) && w.includes(d2)),
      describeRun(r),
    );
    assert.deepStrictEqual(await upstreamTags(f.reg, repo), ['1.0']);
    assert.strictEqual((await run(tools.crane, ['digest', `${f.reg.host}/${repo}:1.0`, '--insecure'])).stdout.trim(), d2);
  });

  it('a delete DigitalOcean refuses as read-only goes back to the guard and is tried again, never reported as refused', async () => {
    const repo = uniqueRepo('clean-readonly');
    await pushTinyImage(f.reg.host, `${repo}:1.0`);
    f.emu.fault('tag-delete', { kind: 'status', status: 409, message: 'registry is read-only while garbage collection is running' });
    const r = await cleanup({ ...viaDigitalOcean, images: `${f.emu.registryHost}/${repo}:1.0` }, doEnv());
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    assert.match(r.stdout, /the registry is read-only: waiting for the GC guard again/);
    assert.match(r.stdout, /GC guard \(the registry refused a delete as read-only\)/);
    assert.deepStrictEqual(await upstreamTags(f.reg, repo), []);
  });

  it("digests: '$(attest.digests)' as the agent leaves it when the attest step was skipped: one warning naming it, the tags cleaned without the digest check", async () => {
    const repo = uniqueRepo('clean-macro');
    await pushTinyImage(f.reg.host, `${repo}:1.0`);
    const image = `${f.emu.registryHost}/${repo}:1.0`;
    const r = await cleanup({ ...viaDigitalOcean, images: image, digests: '$(attest.digests)' }, doEnv());
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    const macro = r.warnings.filter((w) => w.includes('$(attest.digests)'));
    assert.strictEqual(macro.length, 1, describeRun(r));
    assert.match(macro[0], /Input 'digests' is the unexpanded macro .* counts as empty.*did not run/);
    assert.ok(
      r.warnings.some((w) => /without checking that it still points at a digest this run published/.test(w)),
      describeRun(r),
    );
    assert.strictEqual(r.outputs.removedTags, image);
  });

  it('a 2,500-tag repository: every page of the tag list is read; a tag on the last page keeps the digest it shares', async function () {
    this.timeout(180_000);
    const plain = await startRegistry();
    try {
      const repo = 'team/big';
      const tags = await pushManyTags(plain.host, repo, 2500);
      await run(tools.crane, ['tag', `${plain.host}/${repo}:t0001`, 'zz-keep', '--insecure']);
      const images = ['t0000', 't0001', 't0002'].map((t) => `${plain.host}/${repo}:${t}`);
      const r = await cleanup({ images: images.join(','), gcGuard: 'false' }, {}, 150_000);
      assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
      assert.strictEqual(r.outputs.removedTags, `${images[0]},${images[2]}`);
      assert.strictEqual(r.outputs.keptTags, images[1]);
      assert.ok(
        r.warnings.some((w) => w.includes(images[1]) && /zz-keep/.test(w) && w.includes(tags.get('t0001')!)),
        describeRun(r),
      );
      const left = await upstreamTags(plain, repo);
      assert.strictEqual(left.length, 2500 + 2 - 2, 'all but the two removed');
      assert.ok(left.includes('t0001') && left.includes('zz-keep') && !left.includes('t0000') && !left.includes('t0002'));
    } finally {
      await plain.stop();
    }
  });

  it('OCI distribution API: deletes the manifest only when no tag outside the list points at it', async () => {
    const repo = uniqueRepo('clean-oci');
    const d = await pushTinyImage(f.reg.host, `${repo}:1.0`);
    await run(tools.crane, ['tag', `${f.reg.host}/${repo}:1.0`, 'keep-me', '--insecure']);
    await pushTinyImage(f.reg.host, `${repo}:2.0`);
    const agent = { DOCKER_CONFIG: f.frontConfig };
    const r = await cleanup({ images: [`${f.emu.registryHost}/${repo}:1.0`, `${f.emu.registryHost}/${repo}:2.0`].join(','), gcGuard: 'false' }, agent);
    assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
    assert.strictEqual(r.outputs.removedTags, `${f.emu.registryHost}/${repo}:2.0`);
    assert.ok(
      r.warnings.some((w) => /keep-me/.test(w) && w.includes(d)),
      describeRun(r),
    );
    assert.deepStrictEqual(await upstreamTags(f.reg, repo), ['1.0', 'keep-me']);
  });

  it('a registry without deletion (405 UNSUPPORTED): a warning with the remediation; Failed only with onRefused: fail', async () => {
    const plain = await startRegistry({ deleteEnabled: false });
    try {
      const repo = uniqueRepo('clean-405');
      const d = await pushTinyImage(plain.host, `${repo}:1.0`);
      const inputs = { images: `${plain.host}/${repo}:1.0`, gcGuard: 'false' };
      const warned = await cleanup(inputs);
      assert.strictEqual(warned.result, 'SucceededWithIssues', describeRun(warned));
      assert.ok(
        warned.warnings.some((w) => /refused to delete/.test(w) && w.includes(d) && /storage\.delete\.enabled/.test(w)),
        describeRun(warned),
      );
      assert.strictEqual(warned.outputs.keptTags, `${plain.host}/${repo}:1.0`);
      const failed = await cleanup({ ...inputs, onRefused: 'fail' });
      assert.strictEqual(failed.result, 'Failed', describeRun(failed));
      assert.match(failed.resultMessage, /1 refused.*onRefused: fail/);
    } finally {
      await plain.stop();
    }
  });

  it('bad input fails in one line before any request', async () => {
    const before = f.emu.requests.length;
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ images: `${f.emu.registryHost}/x/y@sha256:${'a'.repeat(64)}` }, /names no tag/],
      [{ images: `${f.emu.registryHost}/x/y:1`, digests: `${f.emu.registryHost}/x/y:1` }, /'digests'.*not a repo@sha256/],
      [{ images: `${f.emu.registryHost}/x/y:1`, onRefused: 'ignore' }, /must be one of warn, fail/],
      [{ images: `${f.emu.registryHost}/x/y:1`, removeSignatures: '' }, /'removeSignatures' must be 'true' or 'false'/],
    ];
    for (const [inputs, re] of cases) {
      const r = await runTask(CLEANUP_TASK, { inputs, env: agentEnv(), timeoutMs: 20_000 });
      assert.strictEqual(r.result, 'Failed', describeRun(r));
      assert.match(r.resultMessage, re);
      assert.ok(!r.resultMessage.includes('\n'));
    }
    assert.strictEqual(f.emu.requests.length, before, 'no request was made');
  });
});

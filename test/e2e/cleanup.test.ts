// RegistryCleanup@1 end to end: the bundled task, the real registry (with and without deletion),
// the emulator's DigitalOcean repository API over it, and signatures made by the real cosign. It
// removes the run's tags and their signatures, keeps a tag another run moved or another tag shares,
// waits out a GC before deleting through DigitalOcean, and reports a registry that does not delete.
import * as assert from 'assert';
import * as fs from 'fs';
import { CLEANUP_TASK, tools } from '../harness/paths';
import { RealRegistry, pushTinyImage, run, startRegistry } from '../harness/registry';
import { TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { doEndpointEnv } from '../harness/pipeline-env';
import { DO_ID, uniqueRepo, useCosignFixture } from './cosignSupport';

const NO_DELETE_ID = 'do-nodelete';

describe('RegistryCleanup@1 end-to-end (bundled task, real registry, DigitalOcean API emulated)', function () {
  this.timeout(90_000);
  const f = useCosignFixture({
    tokenScopes: ['registry:read', 'registry:update', 'registry:delete'],
    extraTokens: { nodelete: ['registry:read', 'registry:update'] },
  });

  function cleanup(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<TaskRun> {
    const base = { allowHttpRegistry: 'true', pollIntervalSeconds: '1', settleSeconds: '2', registry: 'demo-registry' };
    return runTask(CLEANUP_TASK, { inputs: { ...base, ...inputs }, env: { ...agentEnv(), ...env }, timeoutMs: 60_000 });
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

  /** Signs an image with the real cosign through the front: its sha256-<hex>.sig tag appears. */
  async function sign(pinned: string): Promise<void> {
    await run(tools.cosign3, ['sign', '--yes', '--key', f.keys.key, '--use-signing-config=false', '--tlog-upload=false', '--allow-http-registry', pinned], {
      COSIGN_PASSWORD: f.keys.password,
      DOCKER_CONFIG: f.frontConfig,
    });
  }

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

  it('a token without registry:delete: the task fails naming the scope; nothing is deleted', async () => {
    const repo = uniqueRepo('clean-403');
    await pushTinyImage(f.reg.host, `${repo}:1.0`);
    const env: Record<string, string> = {
      ...doEndpointEnv(f.emu, NO_DELETE_ID),
      [`ENDPOINT_AUTH_PARAMETER_${NO_DELETE_ID}_APITOKEN`]: 'nodelete',
      [`ENDPOINT_AUTH_${NO_DELETE_ID}`]: JSON.stringify({ scheme: 'Token', parameters: { apitoken: 'nodelete' } }),
    };
    const r = await cleanup({ digitalOceanConnection: NO_DELETE_ID, useDigitalOceanCredentials: 'true', images: `${f.emu.registryHost}/${repo}:1.0` }, env);
    assert.strictEqual(r.result, 'Failed', describeRun(r));
    assert.match(r.resultMessage, /registry:delete/);
    assert.deepStrictEqual(await upstreamTags(f.reg, repo), ['1.0']);
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

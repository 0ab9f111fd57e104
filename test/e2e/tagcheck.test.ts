// RegistryTagCheck@1 end to end: the bundled task against the real registry behind the emulator's
// token-auth front, with DigitalOcean's short-lived credentials. A re-run whose tag exists is
// caught before any build (fail, skip, warn); a new tag passes; only the registry's own "manifest
// unknown" means absent: a 401 or a proxy's HTML 404 fails the check instead.
import * as assert from 'assert';
import * as fs from 'fs';
import { TAG_CHECK_TASK } from '../harness/paths';
import { pushTinyImage } from '../harness/registry';
import { TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { DO_ID, doEnv, pushIndex, uniqueRepo, useCosignFixture } from './cosignSupport';

describe('RegistryTagCheck@1 end-to-end (bundled task, real registry behind the emulator front)', function () {
  this.timeout(60_000);
  const f = useCosignFixture();

  function check(images: string[], extra: Record<string, string> = {}, env: Record<string, string> = {}): Promise<TaskRun> {
    const inputs = { images: images.join('\n'), digitalOceanConnection: DO_ID, useDigitalOceanCredentials: 'true', allowHttpRegistry: 'true', ...extra };
    return runTask(TAG_CHECK_TASK, { inputs, env: { ...agentEnv(), ...doEnv(f), ...env }, timeoutMs: 45_000 });
  }

  /** An existing tag and a new one in a fresh repository, as the front names them. */
  async function existingAndNew(): Promise<{ existing: string; pinned: string; fresh: string }> {
    const repo = uniqueRepo('tags');
    const digest = await pushTinyImage(f.reg.host, `${repo}:2.2.0-beta.6`);
    return {
      existing: `${f.emu.registryHost}/${repo}:2.2.0-beta.6`,
      pinned: `${f.emu.registryHost}/${repo}@${digest}`,
      fresh: `${f.emu.registryHost}/${repo}:2.2.0-beta.7`,
    };
  }

  it('fail (the default): an existing tag fails the task in one line naming it, its digest and what to do', async () => {
    const t = await existingAndNew();
    const r = await check([t.existing, t.fresh]);
    assert.strictEqual(r.result, 'Failed', describeRun(r));
    assert.ok(r.resultMessage.includes(t.existing) && r.resultMessage.includes(t.pinned.split('@')[1]), r.resultMessage);
    assert.match(r.resultMessage, /1 of 2 tag\(s\) already exist: .*bump the version, or delete the tag on purpose \(onExistingTag: fail\)/);
    assert.ok(!r.resultMessage.includes('\n'));
    assert.strictEqual(r.outputs.existingTags, t.existing);
    assert.strictEqual(r.outputs.existingDigests, t.pinned);
    assert.strictEqual(r.outputs.newTags, t.fresh);
    assert.strictEqual(r.outputs.skip, 'false');
    const summary = r.commands.find((c) => c.command === 'task.uploadsummary');
    assert.ok(summary && fs.existsSync(summary.message));
    const md = fs.readFileSync(summary.message, 'utf8');
    assert.match(md, /\*\*exists\*\*/);
    assert.ok(md.includes(t.fresh) && / new /.test(md), md);
  });

  it('skip: a warning and skip=true when every tag exists; skip=false when some are new', async () => {
    const t = await existingAndNew();
    const all = await check([t.existing], { onExistingTag: 'skip' });
    assert.strictEqual(all.result, 'Succeeded', describeRun(all));
    assert.strictEqual(all.outputs.skip, 'true');
    assert.ok(
      all.warnings.some((w) => w.includes(t.existing) && /skip is true/.test(w)),
      describeRun(all),
    );
    const some = await check([t.existing, t.fresh], { onExistingTag: 'skip' });
    assert.strictEqual(some.result, 'Succeeded', describeRun(some));
    assert.strictEqual(some.outputs.skip, 'false');
  });

  it('warn: SucceededWithIssues naming the tag', async () => {
    const t = await existingAndNew();
    const r = await check([t.existing], { onExistingTag: 'warn' });
    assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
    assert.ok(r.warnings.some((w) => w.includes(t.existing)));
  });

  it('new tags only: succeeds, every one in newTags, nothing existing', async () => {
    const repo = uniqueRepo('fresh');
    const tags = Array.from({ length: 10 }, (_, i) => `${f.emu.registryHost}/${repo}:1.${i}.0`);
    const r = await check(tags);
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    assert.strictEqual(r.outputs.newTags, tags.join(','));
    assert.strictEqual(r.outputs.existingTags, '');
    assert.strictEqual(r.outputs.skip, 'false');
  });

  it('an index tag: exists, with the digest of the index itself', async () => {
    const repo = uniqueRepo('idx');
    const d = await pushIndex(f.reg, repo, '3.0');
    const r = await check([`${f.emu.registryHost}/${repo}:3.0`], { onExistingTag: 'warn' });
    assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
    assert.strictEqual(r.outputs.existingDigests, `${f.emu.registryHost}/${repo}@${d.index}`);
  });

  it('a 401 (credentials the registry refuses) is not "absent": the tag could not be checked, Failed', async () => {
    const t = await existingAndNew();
    const cfg = fs.mkdtempSync(`${f.work}/badauth-`);
    fs.writeFileSync(`${cfg}/config.json`, JSON.stringify({ auths: { [f.emu.registryHost]: { auth: Buffer.from('nobody:wrong').toString('base64') } } }));
    const r = await check([t.fresh], { useDigitalOceanCredentials: 'false', digitalOceanConnection: '' }, { DOCKER_CONFIG: cfg });
    assert.strictEqual(r.result, 'Failed', describeRun(r));
    assert.match(r.resultMessage, /could not be checked, so whether they exist is unknown/);
    assert.ok(r.resultMessage.includes(t.fresh));
    assert.strictEqual(r.outputs.newTags, '', 'a tag that could not be checked is never reported as new');
  });

  it('a proxy\'s HTML 404 page is not "manifest unknown": retried, then Failed, never new', async () => {
    const t = await existingAndNew();
    f.emu.fault('front', { kind: 'raw', status: 404, times: Infinity });
    const r = await check([t.fresh]);
    assert.strictEqual(r.result, 'Failed', describeRun(r));
    assert.match(r.resultMessage, /without a MANIFEST_UNKNOWN error body/);
    assert.strictEqual(r.outputs.newTags, '');
  });

  it('bad input fails in one line before any request: a digest reference, no tag (not silently :latest), an empty list or an unexpanded macro, an unknown onExistingTag', async () => {
    const before = f.emu.requests.length;
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ images: `${f.emu.registryHost}/x/y@sha256:${'a'.repeat(64)}` }, /names no tag \(a digest reference/],
      [
        { images: `${f.emu.registryHost}/x/y` },
        /'127\.0\.0\.1:\d+\/x\/y' names no tag \(write the tag out, e\.g\. '127\.0\.0\.1:\d+\/x\/y:1\.0'; no tag is not ':latest' here/,
      ],
      [{ images: `${f.emu.registryHost}/x/y:1\nlocalhost:5000/app` }, /'localhost:5000\/app' names no tag/],
      [{ images: '' }, /'images' is required/],
      [{ images: '$(check.newTags)' }, /'images' is required/],
      [{ images: `${f.emu.registryHost}/x/y:1`, onExistingTag: 'ignore' }, /must be one of fail, skip, warn/],
    ];
    for (const [inputs, re] of cases) {
      const r = await runTask(TAG_CHECK_TASK, { inputs, env: agentEnv(), timeoutMs: 20_000 });
      assert.strictEqual(r.result, 'Failed', describeRun(r));
      assert.match(r.resultMessage, re);
      assert.ok(!r.resultMessage.includes('\n') && !/\bat .+:\d+:\d+/.test(r.stdout), 'one line, no stack');
    }
    assert.strictEqual(f.emu.requests.length, before, 'no request was made');
  });
});

// No silent fallbacks, end to end: the bundled RegistryTagCheck@1 against the real registry, with
// an agent whose settings cannot be used as given. Each still does its work the one way left
// (no proxy, anonymous access) and says so in one warning, instead of in a debug line or not at all.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { TAG_CHECK_TASK, tempDir } from '../harness/paths';
import { pushTinyImage } from '../harness/registry';
import { TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { uniqueRepo, useCosignFixture } from './cosignSupport';

describe('no silent fallbacks (bundled RegistryTagCheck@1, real registry)', function () {
  this.timeout(60_000);
  const f = useCosignFixture();

  /** One existing tag on the real registry (anonymous access), checked with the agent's own docker config. */
  async function checkExisting(env: Record<string, string>): Promise<TaskRun> {
    const repo = uniqueRepo('fallback');
    await pushTinyImage(f.reg.host, `${repo}:1.0`);
    const inputs = { images: `${f.reg.host}/${repo}:1.0`, onExistingTag: 'warn', allowHttpRegistry: 'true' };
    return runTask(TAG_CHECK_TASK, { inputs, env: { ...agentEnv(), ...env }, timeoutMs: 45_000 });
  }

  it('an agent docker config that is not JSON: one warning naming it, then anonymous access that works', async () => {
    const dir = tempDir('corrupt-docker');
    try {
      fs.writeFileSync(path.join(dir, 'config.json'), '{"auths": {"r.io": {"auth": "dTpw"');
      const r = await checkExisting({ DOCKER_CONFIG: dir });
      assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
      const about = r.warnings.filter((w) => w.includes(path.join(dir, 'config.json')));
      assert.strictEqual(about.length, 1, describeRun(r));
      assert.match(about[0], /is not a docker config .*registry requests are anonymous/);
      assert.ok(r.outputs.existingTags, 'the check still answered');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an Agent.ProxyUrl that is not a URL: one warning, then a direct connection that works', async () => {
    const r = await checkExisting({ AGENT_PROXYURL: 'http://proxy-user:proxy-pw-e2e@[not a host' });
    assert.strictEqual(r.result, 'SucceededWithIssues', describeRun(r));
    const about = r.warnings.filter((w) => /Agent\.ProxyUrl/.test(w));
    assert.strictEqual(about.length, 1, describeRun(r));
    assert.match(about[0], /is set but is not a URL: the tasks and cosign connect without a proxy/);
    assert.ok(!(r.stdout + r.stderr).includes('proxy-pw-e2e'), 'no part of the value is printed');
  });
});

// Reliability 4: the suite-wide secret scan. The scan itself runs after every test file (the root
// hook in test/reliability/hooks.ts); the reporter then fails the run when the scans read fewer task
// runs than the suite started, or found a secret (test/reporter.js). This file proves the scanner
// finds what it must, and that a real task run with fresh secrets is recorded and scanned clean.
import * as assert from 'assert';
import * as crypto from 'crypto';
import { startEmulator } from '../harness/emulator';
import { WAIT_TASK } from '../harness/paths';
import { doEndpointEnv } from '../harness/pipeline-env';
import { agentEnv, runTask } from '../harness/run-task';
import { leaksIn, registeredSecrets, scanNow } from '../harness/secrets';

describe('reliability: the secret scan', () => {
  it('the scanner finds a secret raw, ##vso-escaped, and by the keys.ts password shape; nothing in clean text', () => {
    const secret = `tok-${crypto.randomBytes(12).toString('hex')}`;
    assert.strictEqual(leaksIn(`##vso[task.debug]Authorization: Bearer ${secret}`, [secret]).length, 1);
    assert.strictEqual(leaksIn(`##vso[task.debug]x=a%0A${secret}%0Ab`, [secret]).length, 1);
    assert.strictEqual(leaksIn('COSIGN_PASSWORD=pw-k3j4h5g6-secret', []).length, 1);
    assert.strictEqual(leaksIn('nothing to see: sha256:0123abcd, tok- (prefix only)', [secret]).length, 0);
  });

  it("a task run with a fresh token is recorded, its token registered from the agent's environment, and scanned clean", async () => {
    const token = `dop_v1_${crypto.randomBytes(24).toString('hex')}`;
    const emu = await startEmulator({ token });
    try {
      const before = scanNow().runs;
      const r = await runTask(WAIT_TASK, {
        inputs: { digitalOceanConnection: 'scan', pollIntervalSeconds: '1', settleSeconds: '0' },
        env: { ...agentEnv(), ...doEndpointEnv(emu, 'scan') },
      });
      assert.strictEqual(r.result, 'Succeeded', r.resultMessage);
      assert.ok(registeredSecrets().includes(token), 'the connection token was registered from the environment');
      const scan = scanNow();
      assert.strictEqual(scan.runs, before + 1, 'the run was recorded for the scan');
      assert.ok(scan.lines > 0, 'its output was read');
      assert.deepStrictEqual(
        scan.leaks.map((l) => `${l.where}: ${l.line}`),
        [],
      );
    } finally {
      await emu.stop();
    }
  });
});

// Reliability 4: the suite-wide secret scan and the totals line.
// The root-level `after` below belongs to mocha's root suite, so it runs once, after every test
// file of the run (not only this folder's). test/reliability/hooks.ts does the same as a root hook
// plugin; whichever runs first reports (assertNoLeaks is idempotent).
import * as assert from 'assert';
import { assertNoLeaks, leaksIn, registeredSecrets, scanNow } from '../harness/secrets';

after(function () {
  assertNoLeaks();
});

describe('reliability: secret scan of every task run so far', () => {
  it('has secrets to look for (the emulator default token, every token/password handed to a task)', () => {
    const s = registeredSecrets();
    assert.ok(s.includes('dop_v1_emulator_token'));
    assert.ok(s.length >= 3, `${s.length} secrets registered`);
  });

  it('the scanner itself finds a planted secret, raw, ##vso-escaped, and by the keys.ts password shape', () => {
    assert.strictEqual(leaksIn('##vso[task.debug]Authorization: Bearer dop_v1_emulator_token').length, 1);
    assert.strictEqual(leaksIn('##vso[task.debug]x=a%0Adop_v1_emulator_token%0Ab', ['dop_v1_emulator_token']).length, 1);
    assert.strictEqual(leaksIn('COSIGN_PASSWORD=pw-k3j4h5g6-secret', []).length, 1);
    assert.strictEqual(leaksIn('nothing to see: sha256:0123abcd, dop_v1_ (prefix only)').length, 0);
  });

  it('finds no secret in the output or child argv recorded up to here', () => {
    const r = scanNow();
    assert.deepStrictEqual(
      r.leaks.map((l) => `${l.where}: ${l.secret}: ${l.line}`),
      [],
      `secrets leaked (${r.lines} lines of ${r.runs} runs scanned)`,
    );
  });
});

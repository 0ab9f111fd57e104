// L0 tests for Cosign@1: MockTestRunner runs of the unbundled task proving that every bad input
// and a retry budget that does not fit fail at once: one line naming the input, no connection, no
// child. (The library pieces it decides with are unit-tested in test/unit/cosign.test.ts.)
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { tempDir, tools } from '../harness/paths';
import { runL0Scenario } from '../helpers/l0';
import type { CosignScenario } from './scenarios/cosign-scenario';

const SCENARIO = path.join(__dirname, 'scenarios', 'cosign-scenario.js');
const IMG = 'registry.example.com/acme/app@sha256:' + 'a'.repeat(64);

// ------------------------------------------------------------------ the task under MockTestRunner

interface L0Run {
  tr: MockTestRunner;
  connects: string[];
  children: string[];
  agentDir: string;
}

async function runScenario(s: Omit<CosignScenario, 'agentDir'>): Promise<L0Run> {
  const agentDir = tempDir('l0-cosign');
  const { tr, pick } = await runL0Scenario(SCENARIO, 'CosignV1', { ...s, agentDir });
  return { tr, connects: pick('L0-CONNECT'), children: pick('L0-CHILD'), agentDir };
}

describe('Cosign@1 L0: inputs are checked before any connection or child process', function () {
  this.timeout(60_000);
  let dir: string;
  let key: string;
  let pub: string;
  let predicate: string;
  before(() => {
    dir = tempDir('l0-cosign-files');
    key = path.join(dir, 'cosign.key');
    pub = path.join(dir, 'cosign.pub');
    predicate = path.join(dir, 'pred.json');
    fs.writeFileSync(key, 'not really a key');
    fs.writeFileSync(pub, 'not really a key');
    fs.writeFileSync(predicate, '{}');
  });

  const good = () => ({
    command: 'attest',
    images: IMG,
    key,
    publicKey: pub,
    predicate,
    cosignPath: tools.cosign3,
    tlogUpload: 'false',
  });

  function assertRefused(r: L0Run, input: string, re?: RegExp): void {
    const dump = `--- stdout ---\n${r.tr.stdout}\n--- stderr ---\n${r.tr.stderr}`;
    assert.strictEqual(r.tr.failed, true, dump);
    assert.strictEqual(r.tr.errorIssues.length, 1, dump);
    const msg = r.tr.errorIssues[0];
    assert.ok(!/[\r\n]/.test(msg), `one line: ${msg}`);
    assert.ok(msg.includes(`'${input}'`) || msg.includes(`${input} (`), `names the input '${input}': ${msg}`);
    if (re) assert.match(msg, re);
    assert.deepStrictEqual(r.connects, [], `no connection\n${dump}`);
    assert.deepStrictEqual(r.children, [], `no child process\n${dump}`);
  }

  const cases: Array<{ name: string; inputs?: Record<string, string>; empty?: string[]; env?: Record<string, string>; input: string; re?: RegExp }> = [
    { name: 'pickList: unknown command', inputs: { command: 'attest-all' }, input: 'command', re: /got 'attest-all'/ },
    { name: 'multiLine: images empty', inputs: { images: '' }, empty: ['images'], input: 'images' },
    { name: 'multiLine: a bad reference among good ones', inputs: { images: `${IMG}\nNot/A/Valid:Ref` }, input: 'images' },
    { name: 'string: key required for sign', inputs: { command: 'sign', key: '' }, empty: ['key'], input: 'key' },
    { name: 'string: key file missing', inputs: { key: path.join('/nonexistent', 'k.key') }, input: 'key', re: /does not exist/ },
    {
      name: 'string: publicKey required for verify-attestation',
      inputs: { command: 'verify-attestation', publicKey: '' },
      empty: ['publicKey'],
      input: 'publicKey',
    },
    { name: 'filePath: predicate missing', inputs: { predicate: '/nonexistent/p.json' }, input: 'predicate' },
    { name: 'filePath: predicate is a folder (empty filePath arrives as the sources folder)', inputs: { predicate: '/tmp' }, input: 'predicate', re: /folder/ },
    { name: 'multiLine: annotation without =', inputs: { command: 'sign', annotations: 'oops' }, input: 'annotations' },
    { name: 'boolean: empty (an unset pipeline variable)', inputs: {}, empty: ['recursive'], input: 'recursive', re: /got ''/ },
    { name: 'boolean: yes', inputs: { skipIfPresent: 'yes' }, input: 'skipIfPresent' },
    { name: 'boolean: 1', inputs: { verifyAfter: '1' }, input: 'verifyAfter' },
    { name: 'int: not whole', inputs: { maxAttempts: '3.5' }, input: 'maxAttempts' },
    { name: 'int: out of range', inputs: { attemptTimeoutSeconds: '0' }, input: 'attemptTimeoutSeconds' },
    { name: 'int: empty', inputs: {}, empty: ['totalTimeoutMinutes'], input: 'totalTimeoutMinutes' },
    { name: 'int: guard timeout text', inputs: { guardTimeoutMinutes: 'thirty' }, input: 'guardTimeoutMinutes' },
    { name: 'int: maxBackoff below initial', inputs: { initialBackoffSeconds: '30', maxBackoffSeconds: '10' }, input: 'maxBackoffSeconds' },
    { name: 'string: registry name', inputs: { registry: 'Not_A_Name' }, input: 'registry' },
    { name: 'string: rekorUrl not http(s)', inputs: { rekorUrl: 'file:///etc/passwd' }, input: 'rekorUrl' },
    { name: 'string: cosignPath not executable', inputs: { cosignPath: '/nonexistent/cosign' }, input: 'cosignPath' },
    { name: 'string: arguments with an open quote', inputs: { arguments: '--x "open' }, input: 'arguments' },
    {
      name: 'connectedService:digitalocean without a token',
      inputs: { digitalOceanConnection: 'dx' },
      env: { ENDPOINT_URL_dx: 'http://127.0.0.1:9' },
      input: 'digitalOceanConnection',
    },
    { name: 'connectedService:dockerregistry unknown', inputs: { dockerRegistryConnection: 'nope' }, input: 'dockerRegistryConnection' },
    { name: 'useDigitalOceanCredentials without a connection', inputs: { useDigitalOceanCredentials: 'true' }, input: 'useDigitalOceanCredentials' },
    { name: 'verifyAfter without publicKey', inputs: { verifyAfter: 'true', publicKey: '' }, empty: ['publicKey'], input: 'verifyAfter' },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const inputs = { ...good(), ...(c.inputs ?? {}) };
      for (const e of c.empty ?? []) delete (inputs as Record<string, string>)[e];
      const r = await runScenario({ inputs, empty: c.empty, env: c.env });
      assertRefused(r, c.input, c.re);
    });
  }

  it('retry budget that does not fit: fails at once naming the numbers, no connection, no child', async () => {
    const r = await runScenario({
      inputs: { ...good(), maxAttempts: '5', attemptTimeoutSeconds: '180', initialBackoffSeconds: '5', maxBackoffSeconds: '60', totalTimeoutMinutes: '15' },
      env: { DIGITALOCEAN_ACCESS_TOKEN: 'dop_v1_l0_secret_token', DIGITALOCEAN_API_URL: 'http://127.0.0.1:9' },
    });
    assertRefused(
      r,
      'totalTimeoutMinutes',
      /maxAttempts \(5\) × attemptTimeoutSeconds \(180\) \+ largest backoffs \(75s\) = 975s exceeds totalTimeoutMinutes \(900s\)/,
    );
    assert.ok(!r.tr.stdout.includes('dop_v1_l0_secret_token'), 'the token is not printed');
  });

  it('the key password never reaches the log, not even task-lib debug lines', async () => {
    const r = await runScenario({
      inputs: { ...good(), maxAttempts: '0', 'system.debug': 'true' },
      env: { INPUT_KEYPASSWORD: 'l0-key-password-value', SYSTEM_DEBUG: 'true' },
    });
    assertRefused(r, 'maxAttempts');
    assert.ok(!r.tr.stdout.includes('l0-key-password-value'), r.tr.stdout);
  });
});

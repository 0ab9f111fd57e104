// Cosign@1 with keyVaultKey, end to end: the BUNDLED task with the real cosign 2.x and 3.x and the
// real registry signs and attests with an EC P-256 key held only by the emulated Key Vault (reached
// through the agent's proxy, trusting the agent's CA, with the pipeline's OIDC token exchanged with
// Entra ID); plain `cosign verify` and `verify-attestation` with the exported public key pass, a
// tampered image or another key fails; each refusal is one line, Failed, with nothing written.
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AzureFixture, azureConnectionEnv, azurePipelineEnv, startAzureFixture } from '../harness/azure-env';
import { generateKeyPair, writePredicate } from '../harness/keys';
import { tempDir, tools } from '../harness/paths';
import { RealRegistry, pushTinyImage, run, startRegistry } from '../harness/registry';
import { TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { registerSecret } from '../harness/secrets';
import { COSIGN_VERSIONS } from './cosignSupport';

const PREDICATE_TYPE = 'https://example.com/promotion/v1';
let seq = 0;

describe('Cosign@1 keyVaultKey: signing with an Azure Key Vault key (real cosign, real registry, emulated Azure)', function () {
  this.timeout(180_000);
  let f: AzureFixture;
  let reg: RealRegistry;
  let work: string;

  before(async function () {
    if (process.platform !== 'linux') this.skip();
    const fixture = await startAzureFixture();
    if (!fixture) throw new Error('openssl is needed for the test CA');
    f = fixture;
    reg = await startRegistry();
    work = tempDir('kv-e2e');
  });
  after(async () => {
    await f?.stop();
    await reg?.stop();
  });
  afterEach(() => {
    f.emu.clearFaults();
    f.emu.cryptoUser = true;
    f.emu.oidcLifetimeSeconds = 600;
    f.emu.accessTokenLifetimeSeconds = 3599;
    for (const t of f.emu.issued) registerSecret(t);
  });

  const push = async () => {
    const repo = `kv/app-${process.pid}-${++seq}`;
    const digest = await pushTinyImage(reg.host, `${repo}:1.0`);
    return { tagged: `${reg.host}/${repo}:1.0`, pinned: `${reg.host}/${repo}@${digest}` };
  };
  const inputs = (cosign: string, image: string, keyUrl: string, extra: Record<string, string> = {}) => ({
    command: 'sign',
    images: image,
    keyVaultKey: keyUrl,
    azureSubscription: f.emu.serviceConnectionId,
    cosignPath: cosign,
    tlogUpload: 'false',
    allowHttpRegistry: 'true',
    allowInsecureRegistry: 'true',
    gcGuard: 'false',
    attemptTimeoutSeconds: '60',
    initialBackoffSeconds: '1',
    maxBackoffSeconds: '2',
    ...extra,
  });
  const runKv = (taskInputs: Record<string, string>, connection?: Record<string, string>, agent = agentEnv()): Promise<TaskRun> =>
    runTask('CosignV1', { inputs: taskInputs, env: { ...agent, ...azurePipelineEnv(f, connection) }, timeoutMs: 150_000 });
  const writePem = (pem: string) => {
    const file = path.join(work, `kv-${++seq}.pub`);
    fs.writeFileSync(file, pem);
    return file;
  };
  const verifies = async (cosign: string, pub: string, pinned: string, command: 'verify' | 'verify-attestation' = 'verify') => {
    const args = [command, '--key', pub, '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--allow-insecure-registry=true'];
    if (command === 'verify-attestation') args.push('--type', PREDICATE_TYPE);
    try {
      await run(cosign, [...args, pinned]);
      return true;
    } catch {
      return false;
    }
  };
  /** Nothing written: no .sig or .att tag for the digest, and no private folder left behind. */
  const assertNothingWritten = async (pinned: string, agent: Record<string, string>) => {
    const [repo, digest] = pinned.split('@');
    const tags = (await run(tools.crane, ['ls', repo, '--insecure'])).stdout;
    assert.ok(!tags.includes(digest.replace(':', '-')), `a cosign tag was written:\n${tags}`);
    assert.deepStrictEqual(
      fs.readdirSync(agent.AGENT_TEMPDIRECTORY).filter((e) => e.startsWith('cosign-keyvault-')),
      [],
    );
  };

  for (const [label, cosign] of COSIGN_VERSIONS) {
    it(`${label}: sign through Key Vault; cosign verify with the exported public key passes, another key and a tampered image fail`, async () => {
      const key = f.emu.addEcKey(`release-${++seq}`);
      const img = await push();
      const agent = agentEnv();
      const r = await runKv(inputs(cosign, img.tagged, f.emu.keyUrl(key.name), { verifyAfter: 'true' }), undefined, agent);
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.strictEqual(r.outputs.digest, img.pinned);
      assert.strictEqual(r.outputs.publicKey, key.publicPem);
      assert.match(r.stdout, new RegExp(`Key Vault key ${f.emu.vaultName}/${key.name}/${key.version}`));
      assert.match(r.stdout, /verifyAfter: .* verifies/);
      const summary = r.commands.find((c) => c.command === 'task.uploadsummary')?.message ?? '';
      assert.match(
        fs.readFileSync(summary, 'utf8'),
        new RegExp(`signed in Azure Key Vault with key \`${f.emu.vaultName}/${key.name}/${key.version} \\(public key sha256:[0-9a-f]{64}\\)`),
      );
      const pub = writePem(r.outputs.publicKey);
      assert.ok(await verifies(cosign, pub, img.pinned), 'cosign verify --key <exported PEM> passes');
      // The other cosign generation verifies it too.
      const other = cosign === tools.cosign2 ? tools.cosign3 : tools.cosign2;
      assert.ok(await verifies(other, pub, img.pinned), 'the other cosign verifies it too');
      const stranger = await generateKeyPair();
      assert.ok(!(await verifies(cosign, stranger.pub, img.pinned)), 'another key does not verify');
      // Cosign@1 verify with keyVaultKey alone: the public key comes from Key Vault.
      const check = await runKv(inputs(cosign, img.pinned, f.emu.keyUrl(key.name), { command: 'verify' }));
      assert.strictEqual(check.result, 'Succeeded', describeRun(check));
      // Tampered: the same tag pushed with other content has another digest and no signature.
      const tampered = await pushTinyImage(reg.host, `${img.tagged.split('/').slice(1).join('/')}`, 'tampered');
      assert.ok(!(await verifies(cosign, pub, `${img.pinned.split('@')[0]}@${tampered}`)), 'a tampered image does not verify');
      // Every token the emulator issued stayed out of the output; each was registered with the agent.
      for (const t of f.emu.issued) assert.ok(!r.stdout.replace(/^##vso\[task\.setsecret\].*$/gm, '').includes(t), 'a token leaked');
      assert.ok(r.commands.some((c) => c.command === 'task.setsecret'));
      assert.deepStrictEqual(
        fs.readdirSync(agent.AGENT_TEMPDIRECTORY).filter((e) => e.startsWith('cosign-keyvault-')),
        [],
      );
    });

    it(`${label}: attest through Key Vault (DSSE); cosign verify-attestation with the exported public key passes`, async () => {
      const key = f.emu.addEcKey(`attest-${++seq}`);
      const img = await push();
      const predicate = writePredicate(work, { promotedTo: 'production', build: seq });
      const r = await runKv(
        inputs(cosign, img.pinned, f.emu.keyUrl(key.name, key.version), { command: 'attest', predicate, predicateType: PREDICATE_TYPE, verifyAfter: 'true' }),
      );
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      const pub = writePem(r.outputs.publicKey);
      assert.ok(await verifies(cosign, pub, img.pinned, 'verify-attestation'), 'cosign verify-attestation passes');
      const stranger = await generateKeyPair();
      assert.ok(!(await verifies(cosign, stranger.pub, img.pinned, 'verify-attestation')), 'another key does not verify');
      // A re-run finds the attestation and skips it (skipIfPresent with the Key Vault public key).
      const again = await runKv(inputs(cosign, img.pinned, f.emu.keyUrl(key.name), { command: 'attest', predicate, predicateType: PREDICATE_TYPE }));
      assert.strictEqual(again.result, 'Succeeded', describeRun(again));
      assert.strictEqual(again.outputs.skipped, 'true');
      // predicateType custom: cosign's {Data, Timestamp} predicate, verified as --type custom.
      const custom = await runKv(
        inputs(cosign, img.pinned, f.emu.keyUrl(key.name), { command: 'attest', predicate, predicateType: 'custom', verifyAfter: 'true' }),
      );
      assert.strictEqual(custom.result, 'Succeeded', describeRun(custom));
      const args = ['verify-attestation', '--key', pub, '--type', 'custom', '--insecure-ignore-tlog=true', '--allow-http-registry=true', img.pinned];
      const out = JSON.parse((await run(cosign, args)).stdout.trim().split('\n')[0]) as { payload: string };
      const stmt = JSON.parse(Buffer.from(out.payload, 'base64').toString('utf8')) as { predicateType: string; predicate: { Data: string } };
      assert.strictEqual(stmt.predicateType, 'https://cosign.sigstore.dev/attestation/v1');
      assert.strictEqual(stmt.predicate.Data, fs.readFileSync(predicate, 'utf8'));
    });
  }

  const oneLineFailed = (r: TaskRun, pattern: RegExp) => {
    assert.strictEqual(r.result, 'Failed', describeRun(r));
    assert.match(r.resultMessage, pattern);
    assert.ok(!r.resultMessage.includes('\n'));
    assert.ok(!/\bat .*\.js:\d+/.test(r.stdout + r.stderr), 'no stack trace');
  };

  it('a service connection with a secret is refused in one line before any request', async () => {
    const key = f.emu.addEcKey(`secret-${++seq}`);
    const img = await push();
    const before = f.emu.requests.length;
    const conn = azureConnectionEnv(f.emu, {
      scheme: 'ServicePrincipal',
      parameters: { authenticationType: 'spnKey', serviceprincipalkey: `spn-secret-${crypto.randomUUID()}` },
    });
    const agent = agentEnv();
    const r = await runKv(inputs(tools.cosign3, img.pinned, f.emu.keyUrl(key.name)), conn, agent);
    oneLineFailed(r, /azureSubscription.*service principal with a secret.*workload identity federation/);
    assert.strictEqual(f.emu.requests.length, before, 'no request reached Azure');
    await assertNothingWritten(img.pinned, agent);
  });

  it('an expired OIDC token: one line naming AADSTS700024, nothing written', async () => {
    const key = f.emu.addEcKey(`expired-${++seq}`);
    const img = await push();
    f.emu.oidcLifetimeSeconds = -60;
    const agent = agentEnv();
    const r = await runKv(inputs(tools.cosign2, img.pinned, f.emu.keyUrl(key.name)), undefined, agent);
    oneLineFailed(r, /AADSTS700024.*expired/);
    await assertNothingWritten(img.pinned, agent);
  });

  it("a 403 from Key Vault: one line naming the role 'Key Vault Crypto User', not retried, nothing written", async () => {
    const key = f.emu.addEcKey(`forbidden-${++seq}`);
    const img = await push();
    f.emu.cryptoUser = false;
    const agent = agentEnv();
    const r = await runKv(inputs(tools.cosign3, img.pinned, f.emu.keyUrl(key.name)), undefined, agent);
    oneLineFailed(r, /403.*Key Vault Crypto User/);
    assert.strictEqual(f.emu.requests.filter((q) => q.status === 403).length >= 1, true);
    assert.match(r.stdout, /not retried/);
    await assertNothingWritten(img.pinned, agent);
  });

  it('a key of an unsupported type (RSA): one line, nothing written', async () => {
    const key = f.emu.addRsaKey(`rsa-${++seq}`);
    const img = await push();
    const agent = agentEnv();
    const r = await runKv(inputs(tools.cosign2, img.pinned, f.emu.keyUrl(key.name)), undefined, agent);
    oneLineFailed(r, /is RSA: Cosign@1 signs with EC P-256 keys/);
    await assertNothingWritten(img.pinned, agent);
  });

  it('Key Vault 429 with Retry-After and a 503 are retried, then the signature is attached', async () => {
    const key = f.emu.addEcKey(`busy-${++seq}`);
    const img = await push();
    const busy = (status: number, headers: Record<string, string>) => ({
      answer: (_q: unknown, res: import('http').ServerResponse) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify({ error: { code: status === 429 ? 'Throttled' : 'ServiceUnavailable', message: 'try later' } }));
      },
    });
    f.emu.fault('kv-sign', busy(429, { 'retry-after': '1' }));
    f.emu.fault('kv-sign', busy(503, {}));
    const r = await runKv(inputs(tools.cosign3, img.pinned, f.emu.keyUrl(key.name), { annotations: 'team=platform' }));
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    assert.match(r.stdout, /Key Vault sign .*failed \[transient: http-429\].*waiting 1000 ms/);
    // The annotations are in the signed payload: cosign verify -a checks them.
    const annotated = ['verify', '--key', writePem(r.outputs.publicKey), '-a', 'team=platform', '--insecure-ignore-tlog=true', '--allow-http-registry=true'];
    await run(tools.cosign3, [...annotated, img.pinned]);
    await assert.rejects(run(tools.cosign3, [...annotated.slice(0, 3), '-a', 'team=other', ...annotated.slice(5), img.pinned]));
    assert.match(r.stdout, /Key Vault sign .*failed \[transient: http-503\]/);
    assert.ok(await verifies(tools.cosign3, writePem(r.outputs.publicKey), img.pinned));
  });

  const pushMany = async (n: number) => {
    const images: string[] = [];
    for (let i = 0; i < n; i++) images.push((await push()).pinned);
    return images;
  };
  const okCalls = () => f.emu.requests.filter((q) => (q.endpoint === 'kv-get' || q.endpoint === 'kv-sign') && q.status === 200).length;

  it('one token for a run while it is fresh; renewed before every call once less than the margin is left', async () => {
    const key = f.emu.addEcKey(`tokens-${++seq}`);
    const images = await pushMany(3);
    let entra = f.emu.count('entra');
    let calls = okCalls();
    const first = await runKv(inputs(tools.cosign3, images.join('\n'), f.emu.keyUrl(key.name), { parallelism: '1' }));
    assert.strictEqual(first.result, 'Succeeded', describeRun(first));
    assert.strictEqual(okCalls() - calls, 4, 'get key, then three signs');
    assert.strictEqual(f.emu.count('entra') - entra, 1, 'one exchange for the whole run');
    // Tokens of 300 s are never fresh by the 5-minute margin: each call gets a new one first.
    f.emu.accessTokenLifetimeSeconds = 300;
    const more = await pushMany(3);
    entra = f.emu.count('entra');
    calls = okCalls();
    const second = await runKv(inputs(tools.cosign3, more.join('\n'), f.emu.keyUrl(key.name), { parallelism: '1' }));
    assert.strictEqual(second.result, 'Succeeded', describeRun(second));
    assert.strictEqual(f.emu.count('entra') - entra, okCalls() - calls, 'a new token before every Key Vault call');
    assert.strictEqual(f.emu.count('oidc'), f.emu.count('entra'), 'a new OIDC token for every exchange');
  });

  it('a token Key Vault refuses mid-run (401) is renewed and the call retried', async () => {
    const key = f.emu.addEcKey(`revoked-${++seq}`);
    const img = await push();
    f.emu.fault('kv-sign', {
      authorized: true,
      answer: (_q, res) => {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer authorization="x", resource="https://vault.azure.net"' });
        res.end(JSON.stringify({ error: { code: 'Unauthorized', message: 'AKV10022: Invalid audience / token expired.' } }));
      },
    });
    const entra = f.emu.count('entra');
    const r = await runKv(inputs(tools.cosign2, img.pinned, f.emu.keyUrl(key.name)));
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    assert.match(r.stdout, /Key Vault sign .*failed \[transient: kv-401\]/);
    assert.strictEqual(f.emu.count('entra') - entra, 2, 'the refused token was replaced');
    assert.ok(await verifies(tools.cosign2, writePem(r.outputs.publicKey), img.pinned));
  });

  it('bad inputs: key with keyVaultKey, a URL that is not a Key Vault key, tlogUpload true: one line each, no request', async () => {
    const key = f.emu.addEcKey(`inputs-${++seq}`);
    const keys = await generateKeyPair();
    const before = f.emu.requests.length;
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ key: keys.key }, /'key' and 'keyVaultKey' exclude each other/],
      [{ publicKey: keys.pub }, /'publicKey' and 'keyVaultKey' exclude each other/],
      [{ keyVaultKey: 'https://evil.example.com/keys/k' }, /keyVaultKey.*not on a Key Vault host/],
      [{ tlogUpload: 'true' }, /tlogUpload.*keyVaultKey.*set tlogUpload to false/],
      [{ azureSubscription: '' }, /azureSubscription' is required with 'keyVaultKey'/],
    ];
    for (const [extra, pattern] of cases) {
      const r = await runKv(inputs(tools.cosign3, `${reg.host}/kv/none@sha256:${'a'.repeat(64)}`, f.emu.keyUrl(key.name), extra));
      oneLineFailed(r, pattern);
    }
    assert.strictEqual(f.emu.requests.length, before, 'no request reached Azure');
  });
});

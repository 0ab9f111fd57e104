// Cosign@1 keyVaultKey keeps the promises of a key file: on a DigitalOcean registry (the emulator's
// token-auth front over the real registry) with a GC running when the task starts, the GC guard
// holds the first write until the GC ends, the signature made in the emulated Key Vault is attached
// to the registry's digest, and the real cosign verifies it with the exported public key.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { AzureFixture, azurePipelineEnv, startAzureFixture } from '../harness/azure-env';
import { pushTinyImage, run } from '../harness/registry';
import { describeRun } from '../harness/run-task';
import { registerSecret } from '../harness/secrets';
import { COSIGN_VERSIONS, baseInputs, runCosignTask, uniqueRepo, useCosignFixture } from './cosignSupport';

describe('Cosign@1 keyVaultKey with the GC guard (DigitalOcean front, real registry, real cosign, emulated Key Vault)', function () {
  this.timeout(120_000);
  const f = useCosignFixture();
  let az: AzureFixture;

  before(async function () {
    if (process.platform !== 'linux') this.skip();
    const fixture = await startAzureFixture();
    if (!fixture) throw new Error('openssl is needed for the test CA');
    az = fixture;
  });
  after(async () => {
    for (const t of az?.emu.issued ?? []) registerSecret(t);
    await az?.stop();
  });

  for (const [label, cosign] of COSIGN_VERSIONS) {
    it(`${label}: a GC running when the sign starts → the guard waits, then Key Vault signs the registry's digest and cosign verifies it`, async () => {
      const key = az.emu.addEcKey(`guarded-${label.replace(/\W/g, '')}`);
      const repo = uniqueRepo('kv-guard');
      const digest = await pushTinyImage(f.reg.host, `${repo}:1.0`);
      f.emu.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 6 }] });
      const inputs = baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, {
        command: 'sign',
        key: '',
        keyPassword: '',
        publicKey: '',
        keyVaultKey: az.emu.keyUrl(key.name),
        azureSubscription: az.emu.serviceConnectionId,
        verifyAfter: 'true',
      });
      const seen = az.emu.requests.length;
      const r = await runCosignTask(f, inputs, { env: azurePipelineEnv(az) });
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.strictEqual(r.outputs.digest, `${f.emu.registryHost}/${repo}@${digest}`);
      assert.ok(Number(r.outputs.gcWaitSeconds) >= 2, `gcWaitSeconds ${r.outputs.gcWaitSeconds}`);
      // The guard ended before the first write: the sign call came after the GC finished.
      const signedAt = az.emu.requests.slice(seen).find((q) => q.endpoint === 'kv-sign' && q.status === 200)?.at ?? 0;
      const gc = f.emu.gcs('demo-registry')[0];
      assert.ok(signedAt >= Date.parse(gc.updated_at), 'Key Vault signed after the GC ended');
      const pub = path.join(f.work, `kv-guard-${label.replace(/\W/g, '')}.pub`);
      fs.writeFileSync(pub, r.outputs.publicKey);
      await run(cosign, ['verify', '--key', pub, '--insecure-ignore-tlog=true', '--allow-http-registry=true', r.outputs.digest], {
        DOCKER_CONFIG: f.frontConfig,
      });
    });
  }
});

// The Azure emulator speaks the real protocol: the official Azure SDK for JavaScript
// (@azure/identity's AzurePipelinesCredential, @azure/keyvault-keys' KeyClient and
// CryptographyClient) gets an OIDC token, an Entra ID access token, the public key and a signature
// from it, over TLS with a test CA and through a proxy that alone resolves the Azure names. The
// signature verifies with the public key the SDK read; the emulator saw the 401 challenge first.
import * as assert from 'assert';
import { execFile } from 'child_process';
import * as crypto from 'crypto';
import * as path from 'path';
import { AzureEmulator, startAzureEmulator } from '../harness/emulator/azure';
import { ROOT } from '../harness/paths';
import { ForwardingProxy, startForwardingProxy } from '../harness/proxy';
import { TestCa, testCaAndLeaf } from '../harness/tls';

const PROXY_USER = 'sdk';
const PROXY_PASSWORD = 'sdk-proxy-pw';

function runSdk(
  emu: AzureEmulator,
  ca: TestCa,
  proxy: ForwardingProxy,
  keyUrl: string,
  digest: Buffer,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = path.join(ROOT, 'out', 'test', 'harness', 'azure-sdk-client.js');
  const env = {
    PATH: process.env.PATH ?? '',
    NODE_EXTRA_CA_CERTS: ca.caFile,
    HTTPS_PROXY: `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${proxy.port}`,
    SYSTEM_OIDCREQUESTURI: emu.oidcRequestUri,
    CGG_ADO_TOKEN: emu.systemAccessToken,
  };
  const args = [script, emu.tenantId, emu.clientId, emu.serviceConnectionId, keyUrl, digest.toString('hex')];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('Azure emulator (OIDC, Entra ID, Key Vault) with the real Azure SDK for JavaScript', function () {
  this.timeout(90_000);
  let ca: TestCa;
  let emu: AzureEmulator;
  let proxy: ForwardingProxy;

  before(async function () {
    const made = testCaAndLeaf(['login.microsoftonline.com', 'dev.azure.com', '*.vault.azure.net']);
    if (!made) throw new Error('openssl is needed for the test CA');
    ca = made;
    emu = await startAzureEmulator({ tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
    proxy = await startForwardingProxy({ user: PROXY_USER, password: PROXY_PASSWORD, hosts: emu.proxyHosts });
  });
  after(async () => {
    await proxy?.close();
    await emu?.stop();
  });
  afterEach(() => {
    emu.clearFaults();
    emu.cryptoUser = true;
  });

  it('gives the SDK a token, the public key and an ES256 signature that verifies with it', async () => {
    const key = emu.addEcKey('release-signing');
    const digest = crypto.createHash('sha256').update('payload the pipeline signs').digest();
    const r = await runSdk(emu, ca, proxy, key.kid, digest);
    assert.strictEqual(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { kid: string; kty: string; crv: string; x: string; y: string; signature: string; tokenExpiresOn: number };
    assert.strictEqual(out.kid, key.kid);
    assert.deepStrictEqual([out.kty, out.crv], ['EC', 'P-256']);
    const pub = crypto.createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: out.x, y: out.y }, format: 'jwk' });
    assert.strictEqual(pub.export({ type: 'spki', format: 'pem' }).toString(), key.publicPem);
    const sig = Buffer.from(out.signature, 'base64url');
    assert.strictEqual(sig.length, 64, 'Key Vault returns raw r‖s');
    // The SDK signed the digest; verifying the preimage with SHA-256 checks the same thing.
    assert.ok(crypto.verify('sha256', Buffer.from('payload the pipeline signs'), { key: pub, dsaEncoding: 'ieee-p1363' }, sig), 'the signature verifies');
    assert.ok(out.tokenExpiresOn > Date.now() + 30 * 60_000, 'a Key Vault token of about an hour');
    // The SDK met the challenge first (401 without a token), then came back with one.
    const kv = emu.requests.filter((q) => q.endpoint === 'kv-get' || q.endpoint === 'kv-sign');
    assert.strictEqual(kv[0].status, 401);
    assert.ok(kv.some((q) => q.endpoint === 'kv-sign' && q.status === 200));
    assert.ok(emu.requests.some((q) => q.endpoint === 'oidc' && q.status === 200));
    assert.ok(emu.requests.some((q) => q.endpoint === 'entra' && q.status === 200));
    assert.ok(
      proxy.log.some((e) => e.outcome === 'forwarded' && e.target.startsWith(emu.vaultHost)),
      JSON.stringify(proxy.log),
    );
  });

  it('answers 403 ForbiddenByRbac without the role, which the SDK reports', async () => {
    const key = emu.addEcKey('no-role');
    emu.cryptoUser = false;
    const r = await runSdk(emu, ca, proxy, key.kid, crypto.randomBytes(32));
    assert.notStrictEqual(r.code, 0);
    assert.match(r.stderr, /not authorized to perform action/);
  });

  it('refuses an expired OIDC assertion with AADSTS700024, which the SDK reports', async () => {
    const key = emu.addEcKey('expired');
    emu.oidcLifetimeSeconds = -30;
    try {
      const r = await runSdk(emu, ca, proxy, key.kid, crypto.randomBytes(32));
      assert.notStrictEqual(r.code, 0);
      assert.match(r.stderr, /AADSTS700024/);
    } finally {
      emu.oidcLifetimeSeconds = 600;
    }
  });
});

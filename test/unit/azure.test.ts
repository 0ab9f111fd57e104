// The pure parts of keyVaultKey signing: the key URL grammar (each cloud's vault suffix), Key Vault's
// challenge header, r‖s to DER (what cosign reads, checked against Node's own verifier), the DSSE
// pre-authentication encoding, and the failure classes (429 and 5xx transient with Retry-After,
// 403 permanent naming the role).
import * as assert from 'assert';
import * as crypto from 'crypto';
import { UserError } from '../../tasks/common/platform/errors';
import { HttpStatusError } from '../../tasks/common/platform/http';
import { AzureAnswerError, CRYPTO_USER_ROLE, classifyKeyVaultFailure, parseChallenge, parseKeyVaultKey, rawToDer } from '../../tasks/common/services/azure';
import { dssePae } from '../../tasks/common/workflows/cosign/keyvault';

const V = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

describe('keyVaultKey: the key URL', () => {
  it('takes a key of each cloud, with or without a version', () => {
    assert.deepStrictEqual(parseKeyVaultKey('https://my-vault.vault.azure.net/keys/release-signing'), {
      vaultUrl: 'https://my-vault.vault.azure.net',
      vaultHost: 'my-vault.vault.azure.net',
      vaultName: 'my-vault',
      name: 'release-signing',
      version: undefined,
    });
    assert.strictEqual(parseKeyVaultKey(`https://My-Vault.vault.azure.net/keys/k/${V.toUpperCase()}`).version, V);
    for (const suffix of ['vault.azure.cn', 'vault.usgovcloudapi.net', 'vault.microsoftazure.de']) {
      assert.strictEqual(parseKeyVaultKey(`https://kv1.${suffix}/keys/k/${V}`).vaultHost, `kv1.${suffix}`);
    }
  });

  it('refuses anything else in one line naming the input', () => {
    const bad: Array<[string, RegExp]> = [
      ['my-vault.vault.azure.net/keys/k', /not a URL/],
      ['http://my-vault.vault.azure.net/keys/k', /not an https URL/],
      ['https://u:p@my-vault.vault.azure.net/keys/k', /no user, port/],
      ['https://my-vault.vault.azure.net:8443/keys/k', /no user, port/],
      ['https://my-vault.vault.azure.net/keys/k?api-version=7.5', /no user, port, query/],
      ['https://vault.azure.net.evil.example/keys/k', /not on a Key Vault host/],
      ['https://my-vault.evil.example/keys/k', /not on a Key Vault host/],
      ['https://a.vault.azure.net/keys/k', /not on a Key Vault host/],
      ['https://my-vault.vault.azure.net/secrets/k', /not a key URL/],
      ['https://my-vault.vault.azure.net/keys/k/not-a-version', /not a key URL/],
      ['https://my-vault.vault.azure.net/keys/k_underscore', /not a key URL/],
      ['https://my-vault.vault.azure.net/keys/k\n##vso[task.setvariable variable=x]1', /query or fragment/],
    ];
    for (const [value, why] of bad) {
      assert.throws(
        () => parseKeyVaultKey(value),
        (err: unknown) => {
          assert.ok(err instanceof UserError, value);
          assert.match(err.message, /^Input 'keyVaultKey': '/);
          assert.match(err.message, why, value);
          assert.ok(!/[\r\n]/.test(err.message) && !err.message.includes('##vso['), err.message);
          return true;
        },
      );
    }
  });
});

describe("Key Vault's challenge header", () => {
  it('reads authorization and resource; anything not Bearer reads as nothing', () => {
    const c = parseChallenge('Bearer authorization="https://login.microsoftonline.com/t-1", resource="https://vault.azure.net"');
    assert.deepStrictEqual(c, { authorization: 'https://login.microsoftonline.com/t-1', resource: 'https://vault.azure.net' });
    assert.deepStrictEqual(parseChallenge('Basic realm="x"'), {});
    assert.deepStrictEqual(parseChallenge(''), {});
  });
});

describe('ES256 signatures: r‖s to DER', () => {
  it("gives DER that Node's verifier accepts, for many signatures (leading zero bytes and high bits included)", () => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`payload ${i}`);
      const raw = crypto.sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const der = rawToDer(raw);
      assert.ok(crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, der), `signature ${i}`);
    }
  });
});

describe('DSSE pre-authentication encoding', () => {
  it('is "DSSEv1 <len> <type> <len> <payload>" with byte lengths', () => {
    const pae = dssePae('application/vnd.in-toto+json', Buffer.from('{"a":"é"}'));
    assert.strictEqual(pae.toString('utf8'), 'DSSEv1 28 application/vnd.in-toto+json 10 {"a":"é"}');
  });
});

describe('Key Vault failure classes', () => {
  it('429 and 5xx are transient (Retry-After kept); 403 is permanent and names the role; 404 permanent', () => {
    assert.deepStrictEqual(classifyKeyVaultFailure(new AzureAnswerError('busy', 429, undefined, 2000)), {
      kind: 'transient',
      reason: 'http-429',
      waitMs: 2000,
    });
    assert.strictEqual(classifyKeyVaultFailure(new AzureAnswerError('down', 503)).kind, 'transient');
    const forbidden = classifyKeyVaultFailure(new AzureAnswerError('no', 403, `assign '${CRYPTO_USER_ROLE}'`));
    assert.strictEqual(forbidden.kind, 'permanent');
    assert.match(forbidden.hint ?? '', /Key Vault Crypto User/);
    assert.strictEqual(classifyKeyVaultFailure(new AzureAnswerError('no key', 404)).kind, 'permanent');
    assert.strictEqual(classifyKeyVaultFailure(new HttpStatusError('gateway', 502)).kind, 'transient');
  });
});

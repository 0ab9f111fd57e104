// Registry credentials for Cosign@1 (credentials.ts, cosignjob.ts): what a server issues is checked and
// registered as a secret before use, a malformed answer never prints a slice of itself, the private
// DOCKER_CONFIG never outlives a failure while it is written, and the DigitalOcean calls made for the
// credentials end at totalTimeoutMinutes whatever the API does (the real client against the emulator).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { issuedDockerAuths, lookupFromAuths, writePrivateDockerConfig } from '../../tasks/common/services/credentials';
import { digitalOceanAuths } from '../../tasks/common/workflows/access';
import { DigitalOceanClient } from '../../tasks/common/services/digitalocean';
import { redact } from '../../tasks/common/platform/output';
import { CancelledError, UserError } from '../../tasks/common/platform/errors';
import { startEmulator } from '../harness/emulator';
import { tempDir } from '../harness/paths';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('issued registry credentials (credentials.ts)', () => {
  it('a valid auths answer is kept; the auth, the password and base64(user:password) are redacted from then on', () => {
    const user = 'issued-user-7f3a';
    const password = 'issued-password-91c2e';
    const auths = issuedDockerAuths({ auths: { 'registry.digitalocean.com': { auth: b64(`${user}:${password}`) } } }, 'DO');
    assert.deepStrictEqual(Object.keys(auths), ['registry.digitalocean.com']);
    assert.strictEqual(redact(`a ${password} b ${b64(`${user}:${password}`)} c`), 'a *** b *** c');
  });

  it("DigitalOcean's published example (auth = base64 of user:password and a line break) is used as issued, every form redacted", () => {
    // digitalocean/openapi specification/resources/registry/models/docker_credentials.yml, `auths.registry.digitalocean.com.auth.example`
    const auth = 'YjdkMDNhNjk0N2IyMTdlZmI2ZjNlYzNiZDM1MDQ1ODI6YjdkMDNhNjk0N2IyMTdlZmI2ZjNlYzNiZDM1MDQ1ODIK';
    const token = 'b7d03a6947b217efb6f3ec3bd3504582';
    const auths = issuedDockerAuths({ auths: { 'registry.digitalocean.com': { auth } } }, 'DO');
    assert.deepStrictEqual(auths, { 'registry.digitalocean.com': { auth } });
    assert.strictEqual(lookupFromAuths(auths)('registry.digitalocean.com')?.password, `${token}\n`);
    for (const form of [auth, token, `${token}\n`, b64(`${token}:${token}`)]) assert.strictEqual(redact(`a ${form} b`), 'a *** b', JSON.stringify(form));
  });

  it('a password with any UTF-8 text is used as issued', () => {
    const auth = b64('issued-user-x:pass\tword\u00e9');
    assert.deepStrictEqual(issuedDockerAuths({ auths: { 'r.io': { auth } } }, 'DO'), { 'r.io': { auth } });
  });

  it('a malformed or cut-short answer is an error that quotes nothing of the body', () => {
    const secretish = 'dont-print-me-0123456789';
    const bodies: unknown[] = [
      undefined,
      null,
      'auths',
      { auths: [] },
      { auths: {} },
      { auths: { 'r.io': {} } },
      { auths: { 'r.io': { auth: 42 } } },
      { auths: { 'r.io': { auth: `${secretish}!!` } } },
      { auths: { 'r.io': { auth: b64(secretish) } } }, // no ':'
      { auths: { 'r.io': { auth: b64(`:${secretish}`) } } }, // no user
      { auths: { 'r.io': { auth: b64(`${secretish}:`) } } }, // no password
      { auths: { 'r.io': { auth: b64(`${secretish}:`) + '\n' } } }, // not base64
      { auths: { 'r.io': { auth: Buffer.from([0x75, 0x3a, 0xff, 0xfe]).toString('base64') } } }, // not UTF-8
      { auths: { 'r.io': { auth: b64(`${secretish}:\n`) } } }, // a password that is only a line break
      { auths: { 'r.io': { auth: b64(`${secretish}:pw`).slice(0, -2) } } }, // cut short
      { auths: { [`##vso[task.complete]${secretish}`]: { auth: b64('u:p') } } },
    ];
    for (const body of bodies) {
      assert.throws(
        () => issuedDockerAuths(body, 'DigitalOcean API docker-credentials'),
        (err: unknown) => {
          const m = (err as Error).message;
          assert.match(
            m,
            /^DigitalOcean API docker-credentials answered without usable registry credentials \((?:`auths[^`]*`|the key of auths entry \d+)[^\n]+\); the answer is not printed\.$/,
            m,
          );
          assert.ok(!m.includes(secretish) && !m.includes(b64(secretish).slice(0, 8)), m);
          return true;
        },
        JSON.stringify(body),
      );
    }
  });

  it('the private DOCKER_CONFIG folder is removed when writing it fails', () => {
    const root = tempDir('creds-fail');
    try {
      const hostile = {
        get 'r.io'(): { auth: string } {
          throw new Error('the disk is full');
        },
      };
      assert.throws(() => writePrivateDockerConfig(hostile as never, 'digitalocean', root), /the disk is full/);
      assert.deepStrictEqual(
        fs.readdirSync(root).filter((e) => e.startsWith('cosign-docker-')),
        [],
      );
      const ok = writePrivateDockerConfig({ 'r.io': { auth: b64('u:pw1') } }, 'digitalocean', root);
      assert.strictEqual((fs.statSync(ok.dir!).mode & 0o777).toString(8), '700');
      assert.strictEqual((fs.statSync(path.join(ok.dir!, 'config.json')).mode & 0o777).toString(8), '600');
      ok.remove();
      assert.ok(!fs.existsSync(ok.dir!));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('DigitalOcean credentials are bounded by totalTimeoutMinutes (workflows/access.ts digitalOceanAuths)', function () {
  this.timeout(20_000);

  it('a docker-credentials call that never answers ends at the total deadline (not Cancelled)', async () => {
    const emu = await startEmulator({});
    try {
      emu.fault('credentials', { kind: 'slow', delayMs: 15_000, times: 1 });
      const client = new DigitalOceanClient({ token: emu.token, apiUrl: emu.apiUrl, source: 'env' });
      const job = new AbortController();
      const started = Date.now();
      await assert.rejects(
        digitalOceanAuths(client, 'demo-registry', { readWrite: true, expirySeconds: 600 }, 1500, job.signal),
        (err: unknown) => err instanceof UserError && !(err instanceof CancelledError) && /not obtained within totalTimeoutMinutes/.test(err.message),
      );
      const took = Date.now() - started;
      assert.ok(took >= 1400 && took < 4000, `took ${took} ms`);
    } finally {
      await emu.stop();
    }
  });

  it('an answer from the emulator is checked and returned; the job cancellation stays a cancellation', async () => {
    const emu = await startEmulator({});
    try {
      const client = new DigitalOceanClient({ token: emu.token, apiUrl: emu.apiUrl, source: 'env' });
      const ok = await digitalOceanAuths(client, 'demo-registry', { readWrite: true, expirySeconds: 600 }, 10_000, new AbortController().signal);
      assert.strictEqual(ok.registry, 'demo-registry');
      const [entry] = Object.values(ok.auths);
      assert.strictEqual(redact(entry.auth), '***');
      emu.fault('credentials', { kind: 'slow', delayMs: 10_000, times: 1 });
      const job = new AbortController();
      setTimeout(() => job.abort(), 300);
      await assert.rejects(
        digitalOceanAuths(
          new DigitalOceanClient({ token: emu.token, apiUrl: emu.apiUrl, source: 'env' }),
          'demo-registry',
          { readWrite: true, expirySeconds: 600 },
          10_000,
          job.signal,
        ),
        CancelledError,
      );
    } finally {
      await emu.stop();
    }
  });
});

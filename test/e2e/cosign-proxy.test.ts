// Cosign@1 on a self-hosted agent behind a proxy: the BUNDLED task with the real cosign 2.x and 3.x,
// the agent's proxy settings and CA as the agent passes them (AGENT_PROXYURL, AGENT_PROXYUSERNAME,
// AGENT_PROXYPASSWORD, AGENT_PROXYBYPASSLIST, AGENT_CAINFO), a forwarding proxy of ours that wants
// Basic credentials and is the only one to resolve `registry.test`, and the real distribution
// registry serving https with a certificate of a test CA. Go never proxies loopback addresses, so
// cosign reaches the registry only by that name, only through the proxy, and only trusting the CA.
import * as assert from 'assert';
import * as fs from 'fs';
import * as crypto from 'crypto';
import { KeyPair, generateKeyPair } from '../harness/keys';
import { ForwardingProxy, ProxyLogEntry, startForwardingProxy } from '../harness/proxy';
import { RealRegistry, pushTinyImage, run, startRegistry } from '../harness/registry';
import { TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { registerSecret } from '../harness/secrets';
import { TestCa, testCaAndLeaf } from '../harness/tls';
import { COSIGN_VERSIONS } from './cosignSupport';
import { onlyOn } from '../helpers/skip';

const USER = 'proxy user';

describe('Cosign@1 behind the agent proxy (real cosign, CONNECT proxy with Basic auth, registry over https with a test CA)', function () {
  this.timeout(120_000);
  let ca: TestCa;
  let reg: RealRegistry;
  let proxy: ForwardingProxy;
  let keys: KeyPair;
  // Characters that userinfo must carry percent-encoded.
  const password = `pr0xy p@ss:w%rd/${crypto.randomBytes(8).toString('hex')}`;
  registerSecret(password);
  registerSecret(encodeURIComponent(password));
  registerSecret(Buffer.from(`${USER}:${password}`).toString('base64'));

  before(async function () {
    onlyOn(this, ['linux'], 'the real cosign and registry are provisioned for Linux');
    ca = testCaAndLeaf(['registry.test']);
    reg = await startRegistry({ tls: { certificate: ca.certFile, key: ca.keyFile } });
    proxy = await startForwardingProxy({ user: USER, password, hosts: { 'registry.test': '127.0.0.1' } });
    keys = await generateKeyPair();
  });
  after(async () => {
    // CGG_PROXY_LOG=<file>: what went through the proxy, for a look by hand.
    if (process.env.CGG_PROXY_LOG && proxy) fs.writeFileSync(process.env.CGG_PROXY_LOG, JSON.stringify(proxy.log, null, 1));
    await proxy?.close();
    await reg?.stop();
  });

  const port = () => reg.host.split(':')[1];
  const image = (repo: string, tagOrDigest: string) => `registry.test:${port()}/${repo}${tagOrDigest}`;
  const agentProxyEnv = (pw: string): Record<string, string> => ({
    ...agentEnv(),
    AGENT_PROXYURL: proxy.url,
    AGENT_PROXYUSERNAME: USER,
    AGENT_PROXYPASSWORD: pw,
    // One pattern that converts (a host nothing here uses) and one that cannot (skipped, debug line).
    AGENT_PROXYBYPASSLIST: JSON.stringify(['nothing\\.example\\.com', '.*\\.(corp|lan)']),
    AGENT_CAINFO: ca.caFile,
    SYSTEM_DEBUG: 'true',
  });
  const signInputs = (cosign: string, images: string, extra: Record<string, string> = {}) => ({
    command: 'sign',
    images,
    key: keys.key,
    keyPassword: keys.password,
    cosignPath: cosign,
    tlogUpload: 'false',
    allowHttpRegistry: 'false',
    allowInsecureRegistry: 'false',
    gcGuard: 'false',
    attemptTimeoutSeconds: '60',
    initialBackoffSeconds: '1',
    maxBackoffSeconds: '1',
    ...extra,
  });
  /** The task with the agent's proxy settings; the CA bundle it wrote for cosign is gone afterwards. */
  const signTask = async (inputs: Record<string, string>, pw: string): Promise<TaskRun> => {
    const env = agentProxyEnv(pw);
    const r = await runTask('CosignV1', { inputs, env, timeoutMs: 90_000 });
    assert.deepStrictEqual(
      fs.readdirSync(env.AGENT_TEMPDIRECTORY).filter((e) => e.startsWith('cosign-ca-')),
      [],
      'the CA bundle was removed on exit',
    );
    return r;
  };
  const connects = (entries: ProxyLogEntry[], go: boolean) =>
    entries.filter((e) => e.method === 'CONNECT' && e.target === `registry.test:${port()}` && /^Go-http-client\//.test(e.userAgent) === go);

  const assertNoProxySecret = (r: TaskRun) => {
    const text = r.stdout + r.stderr;
    for (const form of [password, encodeURIComponent(password), Buffer.from(`${USER}:${password}`).toString('base64')]) {
      assert.ok(!text.includes(form), `the task's output holds the proxy password (${form.slice(0, 5)}…)`);
    }
  };

  for (const [label, cosign] of COSIGN_VERSIONS) {
    describe(label, () => {
      it('signs through the proxy: Node and cosign both CONNECT to registry.test with the credentials, trust the CA; verify passes; no password printed', async () => {
        const repo = `proxy/app-${label.replace(/\W/g, '')}`;
        const digest = await pushTinyImage(reg.host, `${repo}:1.0`);
        const from = proxy.log.length;
        const r = await signTask(signInputs(cosign, image(repo, ':1.0'), { verifyAfter: 'true', publicKey: keys.pub }), password);
        assert.strictEqual(r.result, 'Succeeded', describeRun(r));
        assert.strictEqual(r.outputs.digest, image(repo, `@${digest}`));
        const seen = proxy.log.slice(from);
        assert.ok(connects(seen, false).length >= 1, `Node's digest resolution went through the proxy: ${JSON.stringify(seen)}`);
        const byCosign = connects(seen, true);
        assert.ok(byCosign.length >= 2, `cosign's requests went through the proxy (verify, sign, verify): ${JSON.stringify(seen)}`);
        assert.ok(
          seen.every((e) => e.outcome === 'forwarded'),
          `every request carried the credentials: ${JSON.stringify(seen)}`,
        );
        assert.match(r.stdout, /has no NO_PROXY form/, 'the bypass pattern that cannot be converted is named in a debug line');
        assertNoProxySecret(r);
        // The real cosign verifies, through the same proxy, trusting only the test CA.
        const proxied = new URL(proxy.url);
        proxied.username = encodeURIComponent(USER);
        proxied.password = encodeURIComponent(password);
        await run(cosign, ['verify', '--key', keys.pub, '--insecure-ignore-tlog', r.outputs.digest], {
          HTTPS_PROXY: proxied.href,
          SSL_CERT_FILE: ca.caFile,
        });
      });

      it("a wrong proxy password fails the task: cosign's own CONNECTs are refused (407)", async () => {
        const repo = `proxy/wrong-${label.replace(/\W/g, '')}`;
        const digest = await pushTinyImage(reg.host, `${repo}:1.0`);
        const wrong = `wrong-${crypto.randomBytes(8).toString('hex')}`;
        registerSecret(wrong);
        const from = proxy.log.length;
        // By digest without resolving it: the only client that meets the proxy is cosign.
        const r = await signTask(signInputs(cosign, image(repo, `@${digest}`), { resolveDigest: 'false', maxAttempts: '1' }), wrong);
        assert.strictEqual(r.result, 'Failed', describeRun(r));
        const seen = proxy.log.slice(from);
        assert.ok(connects(seen, true).length >= 1, `cosign asked the proxy: ${JSON.stringify(seen)}`);
        assert.ok(
          seen.every((e) => e.outcome === 'refused'),
          `the proxy refused every request: ${JSON.stringify(seen)}`,
        );
        assert.ok(!(r.stdout + r.stderr).includes(wrong), 'the wrong password is not printed either');
        assertNoProxySecret(r);
      });
    });
  }
});

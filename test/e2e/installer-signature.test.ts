// CosignInstaller@1 end-to-end: a version outside the checksum table, with no `checksum` input, is
// admitted only by the release's own signature, verified offline. The BUNDLED task runs against a
// local mirror (test/harness/mirror.ts) serving assets signed by a Sigstore of our own
// (test/harness/sigstore.ts: a test CA as Fulcio with a CT log, a transparency log with its own
// key; the trustedRoot input names its root). Every refusal: Failed in one line naming what was
// wrong and both fixes, nothing cached, nothing left in the temp folder, the binary never run
// (refused binaries are scripts that leave a marker when run). The cosign 2.x path is checked with a
// signature cosign's release key really made (see test/unit/install-signature.test.ts).
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Mirror, readOnce, sha256, startMirror } from '../harness/mirror';
import { ROOT, tempDir, tools } from '../harness/paths';
import { TaskRun, agentEnv as newAgentEnv, describeRun, runTask } from '../harness/run-task';
import { RELEASE_IDENTITY, RELEASE_ISSUER, TestSigstore, createTestSigstore } from '../harness/sigstore';
import { folderEntries } from '../helpers/folders';

const ASSET = 'cosign-linux-amd64';
const ARCH = process.arch;
const SIGNED_BY = `signature:${RELEASE_IDENTITY}`;
const FIXES =
  "Nothing was cached or run. Pin this binary with the 'checksum' input (its sha256 for linux-amd64), or give the trust material it was signed with ('trustedRoot', 'certificateIdentity', 'certificateOidcIssuer').";
/** The signed payload and signature cosign's release key made for cosign's own v2.4.1 release image (test/unit/install-signature.test.ts). */
const RELEASE_KEY_SIGNED = Buffer.from(
  '{"critical":{"identity":{"docker-reference":"gcr.io/projectsigstore/cosign"},"image":{"docker-manifest-digest":"sha256:b03690aa52bfe94054187142fba24dc54137650682810633901767d8a3e15b31"},"type":"cosign container image signature"},"optional":{"GIT_HASH":"9a4cfe1aae777984c07ce373d97a65428bbff734","GIT_VERSION":"v2.4.1"}}',
);
const RELEASE_KEY_SIGNATURE = 'MEUCIFLs3FPY+a//a0beXlXkprM08va4Y3YKdI9nxKG9l6pmAiEAr7IU2KP4BxcRt0IQxq57MXFIEqoK8SR3Ieuo5HI488Q=\n';

/** The versions installed here without a pin. */
const UNPINNED = ['3.1.1', '3.2.0', '3.2.1', '3.2.2', '3.3.0', '3.3.1', '3.3.2', '3.3.3', '3.3.4', '3.3.5', '2.6.1', '2.6.2', '2.6.3', '2.6.4'];

const made: string[] = [];
function agentEnv(): Record<string, string> {
  const env = newAgentEnv();
  made.push(env.AGENT_WORKFOLDER);
  return env;
}

/** A stand-in cosign that leaves `marker` behind when it runs. */
function markingScript(marker: string, version: string): Buffer {
  return Buffer.from(`#!/bin/sh\ntouch '${marker}'\necho '{"gitVersion":"v${version}"}'\n`);
}

describe('CosignInstaller@1 end-to-end: the release signature, verified offline (bundled task, local mirror, test Sigstore)', function () {
  this.timeout(120_000);
  let mirror: Mirror;
  let sigstore: TestSigstore;
  let cosign: Buffer;
  let cosignBundle: string;
  let work = '';
  let trustedRoot = '';

  before(async function () {
    if (process.platform !== 'linux' || process.arch !== 'x64') this.skip();
    cosign = readOnce(tools.cosign3);
    sigstore = await createTestSigstore();
    cosignBundle = await sigstore.signBlob(cosign);
    work = tempDir('installer-signature');
    trustedRoot = path.join(work, 'trusted_root.json');
    fs.writeFileSync(trustedRoot, sigstore.trustedRoot());
    mirror = await startMirror();
    mirror.addRelease('3.1.1', cosign, { bundle: cosignBundle, checksums: false });
    // Every version these tests install unpinned is outside the checksum table (else the table decides).
    const table = JSON.parse(fs.readFileSync(path.join(ROOT, 'tasks', 'common', 'data', 'cosign-checksums.json'), 'utf8')) as {
      versions: Record<string, unknown>;
    };
    for (const v of UNPINNED) assert.ok(!(v in table.versions), `${v} is not in the checksum table`);
  });
  after(async () => {
    await mirror?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });
  beforeEach(() => mirror?.reset());
  afterEach(() => {
    for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  function install(env: Record<string, string>, version: string, inputs: Record<string, string> = {}): Promise<TaskRun> {
    return runTask('CosignInstallerV1', { inputs: { version, downloadBaseUrl: mirror.url, trustedRoot, ...inputs }, env });
  }

  function assertNothingCached(env: Record<string, string>): void {
    for (const v of folderEntries(path.join(env.AGENT_TOOLSDIRECTORY, 'cosign'))) {
      assert.deepStrictEqual(folderEntries(path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', v)), [], `nothing under cosign/${v}`);
    }
    assert.deepStrictEqual(folderEntries(env.AGENT_TEMPDIRECTORY), [], 'no download leftovers in the agent temp folder');
  }

  /** Failed in one line: `cosign <version> was not installed: <reason>. <both fixes>`; no output, nothing on PATH, nothing cached. */
  function assertRefused(run: TaskRun, env: Record<string, string>, version: string, reason: RegExp): void {
    assert.strictEqual(run.result, 'Failed', describeRun(run));
    assert.strictEqual(run.errors.length, 1, describeRun(run));
    const line = run.errors[0];
    assert.ok(!/[\r\n]/.test(line), `one line: ${line}`);
    const lead = `cosign ${version} was not installed: `;
    assert.ok(line.startsWith(lead) && line.endsWith(`. ${FIXES}`), line);
    assert.match(line.slice(lead.length, line.length - FIXES.length - 2), reason);
    assert.ok(!run.commands.some((c) => c.command === 'task.prependpath' || c.command === 'task.setvariable'), 'no PATH, no outputs');
    assertNothingCached(env);
  }

  /** A release of a marking script on the mirror, with the bundle `sign` makes for it (or none); returns the marker. */
  async function markingRelease(
    env: Record<string, string>,
    version: string,
    bundle?: (script: Buffer) => Promise<string | undefined>,
  ): Promise<{ marker: string; script: Buffer }> {
    const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
    const script = markingScript(marker, version);
    mirror.addRelease(version, script, { bundle: bundle ? await bundle(script) : undefined, checksums: false });
    return { marker, script };
  }

  describe('cosign 3.x: the keyless bundle <asset>.sigstore.json', () => {
    it('verifies and installs: verifiedBy signature:<identity>, the bundle kept in the cache entry, no checksums file read', async () => {
      const env = agentEnv();
      const run = await install(env, '3.1.1');
      assert.strictEqual(run.result, 'Succeeded', describeRun(run));
      assert.strictEqual(run.outputs['verifiedBy'], SIGNED_BY);
      assert.strictEqual(run.outputs['cosignSha256'], sha256(cosign));
      assert.strictEqual(run.outputs['cacheHit'], 'false');
      const dir = path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '3.1.1', ARCH);
      assert.deepStrictEqual(folderEntries(dir), ['cosign', 'cosign-flags.json', 'cosign.sha256', 'cosign.sigstore.json']);
      assert.strictEqual(fs.readFileSync(path.join(dir, 'cosign.sigstore.json'), 'utf8'), cosignBundle);
      assert.strictEqual(mirror.count(`/v3.1.1/${ASSET}.sigstore.json`), 1);
      assert.strictEqual(mirror.count(`/v3.1.1/${ASSET}`), 1);
      assert.strictEqual(mirror.count('cosign_checksums.txt'), 0);
      assert.ok(run.stdout.includes(`is signed by ${RELEASE_IDENTITY}: the release signature verified offline against the trusted root`), describeRun(run));
      assert.deepStrictEqual(run.warnings, []);
    });

    it('the test bundles are what cosign makes: the real cosign 3 verify-blob accepts the same bundle against the same root', () => {
      const bundleFile = path.join(work, 'cosign.sigstore.json');
      const blob = path.join(work, 'blob');
      const blobBundle = path.join(work, 'blob.sigstore.json');
      fs.writeFileSync(bundleFile, cosignBundle);
      fs.writeFileSync(blob, 'a small blob');
      return sigstore.signBlob(Buffer.from('a small blob')).then((b) => {
        fs.writeFileSync(blobBundle, b);
        const args = (file: string, bundle: string) => [
          'verify-blob',
          '--trusted-root',
          trustedRoot,
          '--bundle',
          bundle,
          '--certificate-identity',
          RELEASE_IDENTITY,
          '--certificate-oidc-issuer',
          RELEASE_ISSUER,
          file,
        ];
        const ok = spawnSync(tools.cosign3, args(blob, blobBundle), { encoding: 'utf8', timeout: 60_000 });
        assert.strictEqual(ok.status, 0, ok.stderr);
        assert.match(ok.stderr, /Verified OK/);
        const other = spawnSync(tools.cosign3, args(blob, bundleFile), { encoding: 'utf8', timeout: 60_000 });
        assert.notStrictEqual(other.status, 0, 'the bundle of another artifact does not verify');
      });
    });

    it('a cache hit verifies the kept bundle again over the cached bytes: no request, not run', async () => {
      const env = agentEnv();
      assert.strictEqual((await install(env, '3.1.1')).result, 'Succeeded');
      mirror.reset();
      const run = await install(env, '3.1.1');
      assert.strictEqual(run.result, 'Succeeded', describeRun(run));
      assert.strictEqual(run.outputs['cacheHit'], 'true');
      assert.strictEqual(run.outputs['verifiedBy'], SIGNED_BY);
      assert.strictEqual(mirror.count(), 0, 'no request on a cache hit');
      assert.ok(run.stdout.includes('its release signature verified again'), describeRun(run));
    });

    it('a cached binary replaced by another (sidecar matching it) fails against the kept bundle, is removed, never run', async () => {
      const env = agentEnv();
      assert.strictEqual((await install(env, '3.1.1')).result, 'Succeeded');
      const dir = path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '3.1.1', ARCH);
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      const evil = markingScript(marker, '3.1.1');
      fs.writeFileSync(path.join(dir, 'cosign'), evil);
      fs.writeFileSync(path.join(dir, 'cosign.sha256'), `${sha256(evil)}\n`);
      mirror.reset();
      const run = await install(env, '3.1.1');
      assert.strictEqual(run.result, 'Failed', describeRun(run));
      assert.match(
        run.errors[0],
        /^The cached cosign 3\.1\.1 at '.*' does not verify against the release signature kept with it: the bundle's signature does not match the binary's bytes: the agent's tool cache was altered/,
      );
      assert.ok(!fs.existsSync(dir) && !fs.existsSync(`${dir}.complete`), 'the entry was removed');
      assert.ok(!fs.existsSync(marker), 'never run');
      assert.strictEqual(mirror.count(), 0);
    });

    it('a cache entry without a kept signature (admitted by a pin) is installed afresh through the signature, its binary never run', async () => {
      const env = agentEnv();
      const dir = path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '3.1.1', ARCH);
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'cosign'), markingScript(marker, '3.1.1'), { mode: 0o755 });
      fs.writeFileSync(`${dir}.complete`, '');
      const run = await install(env, '3.1.1');
      assert.strictEqual(run.result, 'Succeeded', describeRun(run));
      assert.strictEqual(run.outputs['cacheHit'], 'false');
      assert.strictEqual(run.outputs['verifiedBy'], SIGNED_BY);
      assert.strictEqual(run.outputs['cosignSha256'], sha256(cosign));
      assert.ok(!fs.existsSync(marker), 'the unverifiable entry was never run');
      assert.ok(run.stdout.includes('keeps no release signature to verify it again; installing it afresh'), describeRun(run));
    });

    it('refuses a bundle signed by another identity', async () => {
      const env = agentEnv();
      const { marker } = await markingRelease(env, '3.2.0', (s) => sigstore.signBlob(s, { identity: 'mallory@example.com' }));
      const run = await install(env, '3.2.0');
      assertRefused(
        run,
        env,
        '3.2.0',
        /^it is signed by 'mallory@example\.com' \(issuer 'https:\/\/accounts\.google\.com'\), not by 'keyless@projectsigstore\.iam\.gserviceaccount\.com' \(issuer 'https:\/\/accounts\.google\.com'\)$/,
      );
      assert.ok(!fs.existsSync(marker), 'never run');
    });

    it('refuses the right identity from another issuer', async () => {
      const env = agentEnv();
      const { marker } = await markingRelease(env, '3.2.1', (s) => sigstore.signBlob(s, { issuer: 'https://token.actions.githubusercontent.com' }));
      const run = await install(env, '3.2.1');
      assertRefused(
        run,
        env,
        '3.2.1',
        /^it is signed by 'keyless@projectsigstore\.iam\.gserviceaccount\.com' \(issuer 'https:\/\/token\.actions\.githubusercontent\.com'\), not by/,
      );
      assert.ok(!fs.existsSync(marker), 'never run');
    });

    it('accepts another identity when certificateIdentity and certificateOidcIssuer name it (a mirror that re-signs)', async () => {
      const env = agentEnv();
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      const script = markingScript(marker, '3.2.2');
      mirror.addRelease('3.2.2', script, {
        bundle: await sigstore.signBlob(script, { identity: 'releases@mirror.example', issuer: 'https://issuer.example' }),
        checksums: false,
      });
      const run = await install(env, '3.2.2', { certificateIdentity: 'releases@mirror.example', certificateOidcIssuer: 'https://issuer.example' });
      assert.strictEqual(run.result, 'Succeeded', describeRun(run));
      assert.strictEqual(run.outputs['verifiedBy'], 'signature:releases@mirror.example');
      assert.ok(fs.existsSync(marker), 'the verified binary is run for its version check');
    });

    it('refuses a tampered binary: the mirror serves other bytes than the bundle signs', async () => {
      const env = agentEnv();
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      const genuine = Buffer.from('#!/bin/sh\necho \'{"gitVersion":"v3.3.0"}\'\n');
      mirror.addRelease('3.3.0', genuine, { bundle: await sigstore.signBlob(genuine), checksums: false });
      mirror.tamper(`/v3.3.0/${ASSET}`, markingScript(marker, '3.3.0'));
      const run = await install(env, '3.3.0');
      assertRefused(
        run,
        env,
        '3.3.0',
        new RegExp(
          `^its Sigstore bundle signs sha256 ${sha256(genuine)}, but the downloaded binary has sha256 [0-9a-f]{64} \\(the binary or its bundle was altered\\)$`,
        ),
      );
      assert.ok(!fs.existsSync(marker), 'never run');
    });

    it('refuses a tampered bundle: one byte of its signature changed', async () => {
      const env = agentEnv();
      const { marker } = await markingRelease(env, '3.3.1', async (s) => {
        const json = JSON.parse(await sigstore.signBlob(s)) as { messageSignature: { signature: string } };
        const sig = Buffer.from(json.messageSignature.signature, 'base64');
        sig[sig.length - 3] ^= 0x01;
        json.messageSignature.signature = sig.toString('base64');
        return JSON.stringify(json);
      });
      const run = await install(env, '3.3.1');
      assertRefused(run, env, '3.3.1', /^the bundle's transparency-log entry does not verify against the trusted root '.*' \(TLOG_BODY_ERROR: /);
      assert.ok(!fs.existsSync(marker), 'never run');
    });

    it('refuses a missing bundle before the binary is downloaded', async () => {
      const env = agentEnv();
      const { marker } = await markingRelease(env, '3.3.2');
      const run = await install(env, '3.3.2');
      assertRefused(run, env, '3.3.2', /^the mirror publishes no signature for cosign-linux-amd64 \(cosign-linux-amd64\.sigstore\.json answered 404\)$/);
      assert.strictEqual(mirror.count(`/v3.3.2/${ASSET}`), 0, 'no binary downloaded');
      assert.ok(!fs.existsSync(marker));
    });

    it('refuses a consistent mirror: the binary and a cosign_checksums.txt that vouches for it, no signature', async () => {
      const env = agentEnv();
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      mirror.addRelease('3.3.3', markingScript(marker, '3.3.3'));
      const run = await install(env, '3.3.3');
      assertRefused(run, env, '3.3.3', /^the mirror publishes no signature for cosign-linux-amd64 /);
      assert.strictEqual(mirror.count('cosign_checksums.txt'), 0, 'the checksums file is never read, let alone trusted');
      assert.strictEqual(mirror.count(`/v3.3.3/${ASSET}`), 0);
      assert.ok(!fs.existsSync(marker));
    });

    it('refuses an unknown root: our test CA is not in the public-good trusted root shipped with the task (no trustedRoot input)', async () => {
      const env = agentEnv();
      const { marker } = await markingRelease(env, '3.3.4', (s) => sigstore.signBlob(s));
      const run = await install(env, '3.3.4', { trustedRoot: '' });
      assertRefused(
        run,
        env,
        '3.3.4',
        /^the bundle's certificate does not chain to a certificate authority of the Sigstore public-good trusted root shipped with the task valid when it was signed/,
      );
      assert.ok(!fs.existsSync(marker));
    });

    it('refuses an expired root: the trusted root ends its CA before the bundle was signed', async () => {
      const env = agentEnv();
      const expired = path.join(env.AGENT_WORKFOLDER, 'expired_root.json');
      fs.writeFileSync(expired, sigstore.trustedRoot({ caValidUntil: new Date(Date.now() - 30 * 60_000) }));
      const { marker } = await markingRelease(env, '3.3.5', (s) => sigstore.signBlob(s));
      const run = await install(env, '3.3.5', { trustedRoot: expired });
      assertRefused(
        run,
        env,
        '3.3.5',
        /^the bundle's certificate does not chain to a certificate authority of the trusted root '.*expired_root\.json' valid when it was signed/,
      );
      assert.ok(!fs.existsSync(marker));
    });

    it('an empty trustedRoot the agent hands over as the sources folder reads as the shipped public-good root', async () => {
      const env = agentEnv();
      const { marker } = await markingRelease(env, '3.3.4', (s) => sigstore.signBlob(s));
      const sources = path.join(env.AGENT_WORKFOLDER, 's');
      fs.mkdirSync(sources, { recursive: true });
      const run = await runTask('CosignInstallerV1', {
        inputs: { version: '3.3.4', downloadBaseUrl: mirror.url, trustedRoot: sources },
        env: { ...env, BUILD_SOURCESDIRECTORY: sources },
      });
      assertRefused(run, env, '3.3.4', /of the Sigstore public-good trusted root shipped with the task valid when it was signed/);
      assert.ok(!fs.existsSync(marker));
    });

    it('a trustedRoot that does not exist fails in one line before any request', async () => {
      const env = agentEnv();
      const run = await install(env, '3.1.1', { trustedRoot: path.join(env.AGENT_WORKFOLDER, 'missing.json') });
      assert.strictEqual(run.result, 'Failed', describeRun(run));
      assert.match(run.errors[0], /^Input 'trustedRoot': '.*missing\.json' does not exist on the agent\.$/);
      assert.strictEqual(mirror.count(), 0);
    });
  });

  it('a version in the extended table (3.0.5) is decided by the table: its signature is never read', async () => {
    const env = agentEnv();
    mirror.addRelease('3.0.5', cosign, { bundle: cosignBundle, checksums: false });
    const run = await install(env, '3.0.5');
    assert.strictEqual(run.result, 'Failed', describeRun(run));
    assert.match(
      run.errors[0],
      /Checksum mismatch .* expected db15cc99e6e4837daabab023742aaddc3841ce57f193d11b7c3e06c8003642b2 from the task's checksum table/,
    );
    assert.strictEqual(mirror.count('.sigstore.json'), 0);
    assertNothingCached(env);
  });

  describe("cosign 2.x: <asset>.sig by cosign's release key (2.0.0 to 3.0.0 publish no bundle)", () => {
    it("installs 2.6.2 whose asset carries a signature cosign's release key made: verifiedBy signature:cosign-release-key", async () => {
      const env = agentEnv();
      mirror.addRelease('2.6.2', RELEASE_KEY_SIGNED, { sig: RELEASE_KEY_SIGNATURE, checksums: false });
      const run = await install(env, '2.6.2');
      assert.strictEqual(run.result, 'Succeeded', describeRun(run));
      assert.strictEqual(run.outputs['verifiedBy'], 'signature:cosign-release-key');
      assert.strictEqual(run.outputs['cosignSha256'], sha256(RELEASE_KEY_SIGNED));
      assert.strictEqual(mirror.count(`/v2.6.2/${ASSET}.sigstore.json`), 1, 'a bundle is looked for first');
      assert.strictEqual(mirror.count(`/v2.6.2/${ASSET}.sig`), 1);
      const dir = path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '2.6.2', ARCH);
      assert.ok(folderEntries(dir).includes('cosign.sig'), 'the signature is kept for the next cache hit');
      mirror.reset();
      const hit = await install(env, '2.6.2');
      assert.strictEqual(hit.outputs['cacheHit'], 'true', describeRun(hit));
      assert.strictEqual(hit.outputs['verifiedBy'], 'signature:cosign-release-key');
      assert.strictEqual(mirror.count(), 0);
    });

    it("refuses a 2.x .sig that is not by cosign's release key", async () => {
      const env = agentEnv();
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      mirror.addRelease('2.6.3', markingScript(marker, '2.6.3'), { sig: RELEASE_KEY_SIGNATURE, checksums: false });
      const run = await install(env, '2.6.3');
      assertRefused(run, env, '2.6.3', /^its signature is not a signature of the downloaded binary by cosign's release key$/);
      assert.ok(!fs.existsSync(marker));
    });

    it('refuses a 2.x release that has only the keyless .sig/.pem pair (its proof is only in the online log)', async () => {
      const env = agentEnv();
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      mirror.addRelease('2.6.1', markingScript(marker, '2.6.1'), { checksums: false });
      mirror.setFile(`/v2.6.1/${ASSET}-keyless.sig`, 'MEUCIQ==');
      mirror.setFile(`/v2.6.1/${ASSET}-keyless.pem`, 'LS0tLS1CRUdJTg==');
      const run = await install(env, '2.6.1');
      assertRefused(
        run,
        env,
        '2.6.1',
        /^the mirror publishes no signature for cosign-linux-amd64 \(cosign-linux-amd64\.sigstore\.json, cosign-linux-amd64\.sig answered 404\)$/,
      );
      assert.strictEqual(mirror.count(`/v2.6.1/${ASSET}`), 0);
      assert.ok(!fs.existsSync(marker));
    });

    it('a 2.x release re-signed with a bundle by a private mirror installs with its identity', async () => {
      const env = agentEnv();
      const cosign2 = readOnce(tools.cosign2);
      mirror.addRelease('2.6.4', cosign2, {
        bundle: await sigstore.signBlob(cosign2, { identity: 'releases@mirror.example', issuer: 'https://issuer.example' }),
        checksums: false,
      });
      const run = await install(env, '2.6.4', { certificateIdentity: 'releases@mirror.example', certificateOidcIssuer: 'https://issuer.example' });
      assert.strictEqual(run.result, 'Succeeded', describeRun(run));
      assert.strictEqual(run.outputs['verifiedBy'], 'signature:releases@mirror.example');
      assert.strictEqual(mirror.count(`/v2.6.4/${ASSET}.sig`), 0, "the release key's .sig is not looked for under another identity");
    });
  });
});

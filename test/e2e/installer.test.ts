// End-to-end tests for CosignInstaller@1: the BUNDLED task (tasks/CosignInstallerV1/index.js)
// runs as the agent runs it, against a release mirror on 127.0.0.1 that serves
// the real cosign 3.1.1 binary from .tools/bin, with a Sigstore bundle beside it signed by a
// Sigstore of our own (test/harness/sigstore.ts; the trustedRoot input names its root). The
// signature's own cases are in installer-signature.test.ts.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Mirror, readOnce, sha256, startMirror } from '../harness/mirror';
import { tempDir, tools } from '../harness/paths';
import { TaskRun, agentEnv as newAgentEnv, describeRun, runTask } from '../harness/run-task';
import { createTestSigstore } from '../harness/sigstore';
import { selfSignedCert } from '../harness/tls';
import { onlyOn } from '../helpers/skip';
import { folderEntries } from '../helpers/folders';

const ASSET = 'cosign-linux-amd64';
const ARCH = process.arch; // tool-lib's cache layout uses os.arch()
const DEFAULT_VERSION = '3.0.6';

/** Agent folders made by this file's tests, removed after each test (each holds ~90 MB cosign copies). */
const made: string[] = [];
function agentEnv(): Record<string, string> {
  const env = newAgentEnv();
  made.push(env.AGENT_WORKFOLDER);
  return env;
}
function cleanUp(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

function sha256File(file: string): string {
  return sha256(fs.readFileSync(file));
}

/**
 * Puts an entry into the tool cache as a finished install leaves it (binary, cosign.sha256 sidecar,
 * <arch>.complete marker). `sidecar` defaults to the digest of `bytes` (a tamperer who fixes the
 * sidecar too); null writes none. Returns the binary's path.
 */
function seedCache(env: Record<string, string>, version: string, bytes: Buffer | string, sidecar?: string | null): string {
  const dir = path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', version, ARCH);
  fs.mkdirSync(dir, { recursive: true });
  const bin = path.join(dir, 'cosign');
  fs.writeFileSync(bin, bytes, { mode: 0o755 });
  if (sidecar !== null) fs.writeFileSync(path.join(dir, 'cosign.sha256'), `${sidecar ?? sha256(bytes)}\n`);
  fs.writeFileSync(`${dir}.complete`, '');
  return bin;
}

/** A stand-in cosign that leaves `marker` behind when it runs, so a test can prove it was never run. */
function markingScript(marker: string, gitVersion: string): string {
  return `#!/bin/sh\ntouch '${marker}'\necho '{"gitVersion":"${gitVersion}"}'\n`;
}

describe('CosignInstaller@1 end-to-end (bundled task, local mirror)', function () {
  this.timeout(120_000);
  let mirror: Mirror;
  let cosign: Buffer;
  let cosignSha: string;
  let bundle: string;
  /** The test Sigstore's trusted_root.json, given as the trustedRoot input. */
  let trustedRoot = '';

  before(async function () {
    onlyOn(this, ['linux-x64'], 'the mirror serves the linux-amd64 cosign the tests provision');
    cosign = readOnce(tools.cosign3);
    cosignSha = sha256(cosign);
    const sigstore = await createTestSigstore();
    bundle = await sigstore.signBlob(cosign);
    const rootDir = tempDir('installer-root');
    trustedRoot = path.join(rootDir, 'trusted_root.json');
    fs.writeFileSync(trustedRoot, sigstore.trustedRoot());
    mirror = await startMirror();
    mirror.addRelease('3.1.1', cosign, { bundle });
  });
  after(async () => {
    await mirror?.close();
    if (trustedRoot) fs.rmSync(path.dirname(trustedRoot), { recursive: true, force: true });
  });
  beforeEach(() => mirror?.reset());
  afterEach(cleanUp);

  function install(env: Record<string, string>, inputs: Record<string, string> = {}, extraEnv: Record<string, string> = {}): Promise<TaskRun> {
    return runTask('CosignInstallerV1', {
      inputs: { version: '3.1.1', downloadBaseUrl: mirror.url, trustedRoot, ...inputs },
      env: { ...env, ...extraEnv },
    });
  }

  function assertInstalled(run: TaskRun, env: Record<string, string>, cacheHit: boolean): string {
    assert.strictEqual(run.result, 'Succeeded', describeRun(run));
    assert.strictEqual(run.code, 0);
    const cosignPath = run.outputs['cosignPath'];
    assert.strictEqual(cosignPath, path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '3.1.1', ARCH, 'cosign'));
    assert.strictEqual(run.outputs['cosignVersion'], '3.1.1');
    assert.strictEqual(run.outputs['cosignSha256'], cosignSha);
    assert.strictEqual(run.outputs['cacheHit'], String(cacheHit));
    assert.match(run.outputs['verifiedBy'] ?? '', /^(checksum|table|signature:keyless@projectsigstore\.iam\.gserviceaccount\.com)$/);
    for (const name of ['cosignPath', 'cosignVersion', 'cosignSha256', 'cacheHit', 'verifiedBy']) {
      const set = run.commands.find((c) => c.command === 'task.setvariable' && c.properties['variable'] === name);
      assert.strictEqual(set?.properties['isOutput'], 'true', `${name} is an output variable`);
    }
    const prepends = run.commands.filter((c) => c.command === 'task.prependpath').map((c) => c.message);
    assert.deepStrictEqual(prepends, [path.dirname(cosignPath)], 'the install folder is prepended to PATH');
    assert.ok((fs.statSync(cosignPath).mode & 0o111) === 0o111, 'executable');
    assert.strictEqual(sha256File(cosignPath), cosignSha, 'the cached binary is the published one');
    assert.deepStrictEqual(run.errors, []);
    return cosignPath;
  }

  /** The tool cache holds exactly one complete entry for 3.1.1 and nothing else (no staging folders); `signed`: with its bundle kept. */
  function assertCleanCache(env: Record<string, string>, signed = false): void {
    const cosignDir = path.join(env.AGENT_TOOLSDIRECTORY, 'cosign');
    assert.deepStrictEqual(folderEntries(cosignDir), ['3.1.1']);
    assert.deepStrictEqual(folderEntries(path.join(cosignDir, '3.1.1')), [ARCH, `${ARCH}.complete`]);
    const kept = signed ? ['cosign', 'cosign-flags.json', 'cosign.sha256', 'cosign.sigstore.json'] : ['cosign', 'cosign-flags.json', 'cosign.sha256'];
    assert.deepStrictEqual(folderEntries(path.join(cosignDir, '3.1.1', ARCH)), kept);
    assert.strictEqual(sha256File(path.join(cosignDir, '3.1.1', ARCH, 'cosign')), cosignSha);
    assert.deepStrictEqual(folderEntries(env.AGENT_TEMPDIRECTORY), [], 'no download leftovers in the agent temp folder');
  }

  function assertNothingCached(env: Record<string, string>): void {
    assert.deepStrictEqual(folderEntries(path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '3.1.1')), [], 'nothing under the tool cache');
    for (const v of folderEntries(path.join(env.AGENT_TOOLSDIRECTORY, 'cosign'))) {
      assert.deepStrictEqual(folderEntries(path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', v)), [], `nothing under cosign/${v}`);
    }
    assert.deepStrictEqual(folderEntries(env.AGENT_TEMPDIRECTORY), [], 'no download leftovers in the agent temp folder');
  }

  /**
   * How long the mirror lets the event loop lag behind a deadline the task keeps: the deadline
   * starts before the first request, so the mirror's measure can only be shorter than the task's.
   */
  const DEADLINE_SLACK_MS = 1000;

  /**
   * The task gave up on `suffix` at its deadline: not before (the run lasted at least that long),
   * and not after (the mirror saw the connection closed within it, counted from the first request),
   * so a machine slow to start the task does not change the verdict.
   */
  function assertWithinDeadline(run: TaskRun, m: Mirror, suffix: string, deadlineMs: number): void {
    assert.ok(run.durationMs >= deadlineMs, `ended after ${run.durationMs} ms, before the ${deadlineMs} ms deadline`);
    const held = m.heldSinceFirstMs(suffix);
    assert.ok(held !== undefined, `the mirror saw ${suffix} requested and its connection closed`);
    assert.ok(held <= deadlineMs + DEADLINE_SLACK_MS, `${suffix} was held ${held.toFixed(0)} ms after the first request, past the ${deadlineMs} ms deadline`);
  }

  function assertFailedOneLine(run: TaskRun, pattern: RegExp): void {
    assert.strictEqual(run.result, 'Failed', describeRun(run));
    assert.notStrictEqual(run.code, null);
    assert.strictEqual(run.errors.length, 1, describeRun(run));
    assert.ok(!/[\r\n]/.test(run.errors[0]), `one line: ${run.errors[0]}`);
    assert.match(run.errors[0], pattern);
    assert.ok(!run.commands.some((c) => c.command === 'task.prependpath'), 'nothing put on PATH');
    assert.ok(!run.commands.some((c) => c.command === 'task.setvariable'), 'no outputs');
  }

  it('installs fresh: outputs, PATH, executable, verified sha', async () => {
    const env = agentEnv();
    const run = await install(env, { checksum: cosignSha });
    assertInstalled(run, env, false);
    assertCleanCache(env);
    assert.strictEqual(mirror.count(`/v3.1.1/${ASSET}`), 1, 'one binary download');
    assert.strictEqual(mirror.count('cosign_checksums.txt'), 0, 'a pinned install does not read the release checksums');
    assert.strictEqual(mirror.count('.sigstore.json'), 0, 'nor its signature');
    assert.strictEqual(run.outputs['verifiedBy'], 'checksum');
  });

  it('hits the cache on the second run without downloading, re-verifying the sha', async () => {
    const env = agentEnv();
    assertInstalled(await install(env, { checksum: cosignSha }), env, false);
    mirror.reset();
    const run = await install(env, { checksum: cosignSha });
    const cosignPath = assertInstalled(run, env, true);
    assert.strictEqual(mirror.count(`/v3.1.1/${ASSET}`), 0, 'no binary download on a cache hit');
    assert.strictEqual(mirror.count(), 0, 'no request at all on a cache hit');
    assert.ok(run.stdout.includes(`sha256 ${cosignSha} verified`), describeRun(run));
    assertCleanCache(env);
    assert.ok(fs.existsSync(cosignPath));
  });

  it('refuses a tampered binary: Failed, nothing cached, no temp leftovers', async () => {
    const env = agentEnv();
    const tampered = Buffer.from(cosign);
    tampered[tampered.length >> 1] ^= 0xff;
    mirror.tamper(`/v3.1.1/${ASSET}`, tampered);
    try {
      const run = await install(env, { checksum: cosignSha });
      assertFailedOneLine(run, new RegExp(`Checksum mismatch .* got sha256 ${sha256(tampered)}, expected ${cosignSha} from the 'checksum' input`));
      assertNothingCached(env);
      // The bundle signs the published binary, so the unpinned path refuses it too.
      const run2 = await install(env);
      assertFailedOneLine(
        run2,
        new RegExp(`bundle signs sha256 ${cosignSha}, but the downloaded binary has sha256 ${sha256(tampered)} .*Nothing was cached or run`),
      );
      assertNothingCached(env);
    } finally {
      mirror.tamper(`/v3.1.1/${ASSET}`, cosign);
    }
  });

  it('fails when the cached binary was altered on disk, and removes the entry', async () => {
    const env = agentEnv();
    const cosignPath = assertInstalled(await install(env, { checksum: cosignSha }), env, false);
    fs.appendFileSync(cosignPath, 'altered');
    mirror.reset();
    const run = await install(env, { checksum: cosignSha });
    assertFailedOneLine(run, /tool cache was altered/);
    assert.ok(run.errors[0].includes(`expected ${cosignSha}`), run.errors[0]);
    assert.strictEqual(mirror.count(), 0, 'the altered binary is not silently replaced');
    assertNothingCached(env);
    assert.ok(!fs.existsSync(path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '3.1.1', `${ARCH}.complete`)));
    // The next run downloads a verified copy again.
    assertInstalled(await install(env, { checksum: cosignSha }), env, false);
    assertCleanCache(env);
  });

  it('fails on a wrong checksum input and caches nothing', async () => {
    const env = agentEnv();
    const wrong = 'ab'.repeat(32);
    const run = await install(env, { checksum: wrong });
    assertFailedOneLine(run, new RegExp(`Checksum mismatch .* got sha256 ${cosignSha}, expected ${wrong} from the 'checksum' input`));
    assertNothingCached(env);
  });

  it('fails on a wrong checksum input even when a verified copy is cached', async () => {
    const env = agentEnv();
    assertInstalled(await install(env, { checksum: cosignSha }), env, false);
    const wrong = 'cd'.repeat(32);
    const run = await install(env, { checksum: wrong });
    assertFailedOneLine(run, new RegExp(`expects ${wrong}`));
    assert.ok(!/altered/.test(run.errors[0]), `a wrong pin is not blamed on the cache: ${run.errors[0]}`);
  });

  it('prepends the install folder even with a stale cosign earlier on PATH', async () => {
    const env = agentEnv();
    const stale = tempDir('stale-cosign');
    made.push(stale);
    const marker = path.join(stale, 'ran');
    fs.writeFileSync(path.join(stale, 'cosign'), `#!/bin/sh\ntouch '${marker}'\necho '{"gitVersion":"v2.2.4"}'\n`, { mode: 0o755 });
    const pathEnv = `${stale}${path.delimiter}${process.env['PATH'] ?? ''}`;
    for (const cacheHit of [false, true]) {
      const run = await install(env, { checksum: cosignSha }, { PATH: pathEnv });
      const cosignPath = assertInstalled(run, env, cacheHit);
      assert.notStrictEqual(path.dirname(cosignPath), stale);
      assert.ok(!fs.existsSync(marker), 'the stale cosign on PATH was never run');
    }
  });

  it('two concurrent installs into one tool cache both succeed with one complete binary', async () => {
    // Two agents on one machine: a shared tool cache, each its own temp folder
    // (task-lib keeps its vault key in Agent.TempDirectory, which one agent never shares).
    const env = agentEnv();
    const env2 = { ...agentEnv(), AGENT_TOOLSDIRECTORY: env.AGENT_TOOLSDIRECTORY };
    // Both downloads are held until both are in flight, so both really race to publish.
    mirror.holdUntil(`/v3.1.1/${ASSET}`, 2);
    const runs = await Promise.all([install(env, { checksum: cosignSha }), install(env2)]);
    for (const run of runs) assertInstalled(run, env, false);
    assert.deepStrictEqual(
      runs.map((r) => r.outputs['verifiedBy']),
      ['checksum', 'signature:keyless@projectsigstore.iam.gserviceaccount.com'],
    );
    assert.strictEqual(runs[0].outputs['cosignSha256'], runs[1].outputs['cosignSha256']);
    assert.strictEqual(runs[0].outputs['cosignPath'], runs[1].outputs['cosignPath']);
    assert.strictEqual(mirror.count(`/v3.1.1/${ASSET}`), 2);
    assert.strictEqual(
      runs.filter((r) => r.stdout.includes('Another job cached cosign 3.1.1 at the same time')).length,
      1,
      'exactly one run lost the race to publish',
    );
    // Whichever won: one complete entry (the signed one keeps its bundle).
    const kept = folderEntries(path.join(env.AGENT_TOOLSDIRECTORY, 'cosign', '3.1.1', ARCH));
    assertCleanCache(env, kept.includes('cosign.sigstore.json'));
  });

  for (const version of ['v3.1.1', '3.1.1']) {
    it(`accepts version '${version}'`, async () => {
      const env = agentEnv();
      const run = await install(env, { version, checksum: cosignSha });
      assertInstalled(run, env, false);
      assert.strictEqual(mirror.count(`/v3.1.1/${ASSET}`), 1);
      assert.strictEqual(mirror.count(`/vv3.1.1/${ASSET}`), 0);
    });
  }

  it(`enforces the checksum table: default ${DEFAULT_VERSION} served with other bytes fails`, async () => {
    const m = await startMirror();
    try {
      // The mirror even publishes checksums that agree with its bytes: the embedded table wins.
      m.addRelease(DEFAULT_VERSION, cosign);
      const env = agentEnv();
      const run = await runTask('CosignInstallerV1', { inputs: { downloadBaseUrl: m.url }, env });
      assertFailedOneLine(run, /Checksum mismatch .* expected c956e5dfcac53d52bcf058360d579472f0c1d2d9b69f55209e256fe7783f4c74 from the task's checksum table/);
      assert.strictEqual(m.count(`/v${DEFAULT_VERSION}/${ASSET}`), 1);
      assert.strictEqual(m.count('cosign_checksums.txt'), 0, 'the table is used, not the mirror checksums');
      assert.strictEqual(m.count('.sigstore.json'), 0, 'nor a signature');
      assertNothingCached(env);
    } finally {
      await m.close();
    }
  });

  it('fails with a one-line message when the mirror does not have the binary', async () => {
    const env = agentEnv();
    const run = await install(env, { version: '3.1.2', checksum: cosignSha });
    assertFailedOneLine(run, /Could not download .*v3\.1\.2\/cosign-linux-amd64.*HTTP 404/);
    assert.strictEqual(mirror.count('/v3.1.2/cosign-linux-amd64'), 1, 'a 404 is not retried');
    assertNothingCached(env);
  });

  it('outside an agent (no Agent.ToolsDirectory): one line, no stack trace, nothing fetched', async () => {
    const env = agentEnv();
    delete env.AGENT_TOOLSDIRECTORY;
    const before = mirror.count();
    const run = await install(env, { checksum: cosignSha });
    assertFailedOneLine(run, /^Agent\.ToolsDirectory is not set; this task must run on an Azure Pipelines agent\.$/);
    assert.ok(!/\n\s+at |\\n\s+at /.test(run.stdout), `no stack trace in the log:\n${run.stdout}`);
    assert.strictEqual(mirror.count(), before, 'no request');
  });

  describe('tool cache integrity: a cache hit is checked against a digest from outside the cache', () => {
    it(`table version ${DEFAULT_VERSION}: other bytes with a matching sidecar fail as altered, are removed, never run, nothing fetched`, async () => {
      const env = agentEnv();
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      const bin = seedCache(env, DEFAULT_VERSION, markingScript(marker, `v${DEFAULT_VERSION}`));
      const run = await install(env, { version: DEFAULT_VERSION });
      assertFailedOneLine(run, /tool cache was altered/);
      assert.ok(
        run.errors[0].includes("expected c956e5dfcac53d52bcf058360d579472f0c1d2d9b69f55209e256fe7783f4c74 from the task's checksum table"),
        run.errors[0],
      );
      assert.ok(!fs.existsSync(marker), 'the altered binary was never run');
      assert.ok(!fs.existsSync(bin) && !fs.existsSync(`${path.dirname(bin)}.complete`), 'the entry was removed');
      assert.strictEqual(mirror.count(), 0, 'the table decides: no request');
      assertNothingCached(env);
    });

    it('the sidecar is never the expected value: the real binary with a wrong or missing sidecar is a verified hit', async () => {
      for (const sidecar of ['ab'.repeat(32), null]) {
        const env = agentEnv();
        seedCache(env, '3.1.1', cosign, sidecar);
        mirror.reset();
        const run = await install(env, { checksum: cosignSha });
        assertInstalled(run, env, true);
        assert.strictEqual(mirror.count(), 0, 'checked against the pin: no request');
        assert.ok(run.stdout.includes(`sha256 ${cosignSha} verified against the 'checksum' input`), describeRun(run));
      }
    });

    it('a cache hit does not run the cached file: the pinned sha256 already proves what it is', async () => {
      const env = agentEnv();
      const marker = path.join(env.AGENT_WORKFOLDER, 'ran');
      const script = markingScript(marker, 'v3.1.1');
      seedCache(env, '3.1.1', script);
      const run = await install(env, { checksum: sha256(script) });
      assert.strictEqual(run.result, 'Succeeded', describeRun(run));
      assert.strictEqual(run.outputs['cacheHit'], 'true');
      assert.strictEqual(run.outputs['cosignSha256'], sha256(script), 'reports the digest of the bytes it hashed');
      assert.ok(!fs.existsSync(marker), 'the cached file was not run');
      assert.strictEqual(mirror.count(), 0);
    });

    it('a symbolic link in place of the cached binary is refused and the entry removed, even when its target matches', async () => {
      const env = agentEnv();
      const bin = seedCache(env, '3.1.1', '');
      const target = path.join(env.AGENT_WORKFOLDER, 'real-cosign');
      fs.writeFileSync(target, cosign, { mode: 0o755 });
      fs.rmSync(bin);
      fs.symlinkSync(target, bin);
      const run = await install(env, { checksum: cosignSha });
      assertFailedOneLine(run, /cannot be verified \(it is a symbolic link while it was checked\): the agent's tool cache was altered/);
      assert.ok(!fs.existsSync(path.dirname(bin)), 'the entry was removed');
      assert.ok(fs.existsSync(target), 'the link target itself is left alone');
    });
  });

  describe('timeoutSeconds: the network deadline of the whole install', () => {
    it('a mirror that trickles the binary at 1 byte/s ends the task within timeoutSeconds plus a few seconds', async () => {
      const m = await startMirror();
      try {
        m.trickle(`/v3.1.1/${ASSET}`, 1);
        const env = agentEnv();
        const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', checksum: cosignSha, downloadBaseUrl: m.url, timeoutSeconds: '3' }, env });
        assertFailedOneLine(run, /^Could not download .*\/v3\.1\.1\/cosign-linux-amd64 within timeoutSeconds \(3s\)/);
        assertWithinDeadline(run, m, `/v3.1.1/${ASSET}`, 3000);
        assert.strictEqual(m.count(`/v3.1.1/${ASSET}`), 1, 'no retry starts after the deadline');
        assertNothingCached(env);
      } finally {
        await m.close();
      }
    });

    it('one deadline for signature and binary: a slow bundle, then a binary that never answers', async () => {
      const m = await startMirror();
      try {
        m.addRelease('3.1.1', cosign, { bundle });
        m.holdUntil(`/v3.1.1/${ASSET}.sigstore.json`, 99, 1500);
        m.stall(`/v3.1.1/${ASSET}`);
        const env = agentEnv();
        const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', downloadBaseUrl: m.url, trustedRoot, timeoutSeconds: '3' }, env });
        assertFailedOneLine(run, /^Could not download .*\/v3\.1\.1\/cosign-linux-amd64 within timeoutSeconds \(3s\)/);
        // One deadline for both: the binary is given up 3 s after the start, not 1.5 s + 3 s.
        assertWithinDeadline(run, m, `/v3.1.1/${ASSET}`, 3000);
        assert.strictEqual(m.count(`/v3.1.1/${ASSET}.sigstore.json`), 1);
        assertNothingCached(env);
      } finally {
        await m.close();
      }
    });

    it('a bundle that never answers ends the task within timeoutSeconds', async () => {
      const m = await startMirror();
      try {
        m.stall(`/v3.1.1/${ASSET}.sigstore.json`);
        const env = agentEnv();
        const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', downloadBaseUrl: m.url, trustedRoot, timeoutSeconds: '2' }, env });
        assertFailedOneLine(run, /^Could not download cosign-linux-amd64\.sigstore\.json within timeoutSeconds \(2s\)/);
        assertWithinDeadline(run, m, `/v3.1.1/${ASSET}.sigstore.json`, 2000);
        assert.strictEqual(m.count(`/v3.1.1/${ASSET}`), 0);
        assertNothingCached(env);
      } finally {
        await m.close();
      }
    });
  });

  describe('the mirror is data: caps and shapes', () => {
    it('a bundle over its 1 MiB cap fails in one line, not retried, content not printed, no binary fetched', async () => {
      const m = await startMirror();
      try {
        m.addRelease('3.1.1', cosign, { bundle: `{"filler":"${'bundle-filler'.repeat(90_000)}"}` });
        const env = agentEnv();
        const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', downloadBaseUrl: m.url, trustedRoot }, env });
        assertFailedOneLine(run, /^Could not download cosign-linux-amd64\.sigstore\.json: the answer is larger than 1048576 bytes$/);
        assert.strictEqual(m.count(`/v3.1.1/${ASSET}.sigstore.json`), 1, 'a body over its cap is permanent');
        assert.strictEqual(m.count(`/v3.1.1/${ASSET}`), 0);
        assert.ok(!run.stdout.includes('bundle-filler'), 'content not printed');
        assertNothingCached(env);
      } finally {
        await m.close();
      }
    });

    it('an HTML page instead of the bundle: refused before the binary is fetched, never printed', async () => {
      const m = await startMirror();
      try {
        const page = `<!DOCTYPE html>\n<html><body><h1>Sign in to continue</h1>\n<p>${cosignSha}  ${ASSET}</p>\n##vso[task.setvariable variable=injected]evil\n##vso[task.complete result=Succeeded;]done\n</body></html>\n`;
        m.addRelease('3.1.1', cosign, { bundle: page });
        const env = agentEnv();
        const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', downloadBaseUrl: m.url, trustedRoot }, env });
        assertFailedOneLine(run, /^cosign 3\.1\.1 was not installed: its Sigstore bundle is not JSON \(\d+ bytes\)\. Nothing was cached or run\./);
        assert.strictEqual(m.count(`/v3.1.1/${ASSET}`), 0, 'no download without a usable signature');
        for (const x of ['Sign in', 'injected', 'evil', '<p>', cosignSha]) assert.ok(!run.stdout.includes(x), `${x} not printed`);
        assert.ok(!run.commands.some((c) => c.properties['variable'] === 'injected'));
        assertNothingCached(env);
      } finally {
        await m.close();
      }
    });

    it('a binary over its 512 MiB cap fails in one line, not retried, nothing cached', async function () {
      this.timeout(60_000);
      const m = await startMirror();
      try {
        m.stream(`/v3.1.1/${ASSET}`, 512 * 1024 * 1024 + 1);
        const env = agentEnv();
        const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', checksum: cosignSha, downloadBaseUrl: m.url }, env });
        assertFailedOneLine(run, /^Could not download .*cosign-linux-amd64: the answer is larger than 536870912 bytes$/);
        assert.strictEqual(m.count(`/v3.1.1/${ASSET}`), 1, 'a body over its cap is permanent');
        assertNothingCached(env);
      } finally {
        await m.close();
      }
    });
  });

  describe('an https mirror (self-signed, trusted through Agent.CAInfo)', () => {
    let certDir = '';
    let tlsMirror: Mirror | undefined;
    let plain: Mirror | undefined;
    let caEnv: Record<string, string> = {};

    before(async function () {
      const tls = selfSignedCert();
      certDir = tls.dir;
      tlsMirror = await startMirror({ tls: { key: tls.key, cert: tls.cert } });
      plain = await startMirror();
      tlsMirror.addRelease('3.1.1', cosign, { bundle });
      plain.addRelease('3.1.1', cosign, { bundle });
      caEnv = { AGENT_CAINFO: tls.certFile };
    });
    after(async () => {
      await tlsMirror?.close();
      await plain?.close();
      if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
    });

    it('installs from the https mirror the agent trusts', async () => {
      const env = agentEnv();
      const run = await runTask('CosignInstallerV1', {
        inputs: { version: '3.1.1', checksum: cosignSha, downloadBaseUrl: tlsMirror!.url },
        env: { ...env, ...caEnv },
      });
      assertInstalled(run, env, false);
      assert.ok(tlsMirror!.url.startsWith('https://'));
    });

    for (const file of [ASSET, `${ASSET}.sigstore.json`]) {
      it(`refuses a redirect of ${file} from https to http: one line naming the hop, not retried`, async () => {
        tlsMirror!.reset();
        plain!.reset();
        tlsMirror!.redirect(`/v3.1.1/${file}`, `${plain!.url}/v3.1.1/${file}`);
        try {
          const env = agentEnv();
          const inputs: Record<string, string> = {
            version: '3.1.1',
            downloadBaseUrl: tlsMirror!.url,
            ...(file === ASSET ? { checksum: cosignSha } : { trustedRoot }),
          };
          const run = await runTask('CosignInstallerV1', { inputs, env: { ...env, ...caEnv } });
          assertFailedOneLine(
            run,
            new RegExp(`Could not download \\S*${file.replace(/\./g, '\\.')}: 127\\.0\\.0\\.1:\\d+ redirected from https to http; refused`),
          );
          assert.strictEqual(tlsMirror!.count(`/v3.1.1/${file}`), 1, 'a refused redirect is permanent');
          assert.strictEqual(plain!.count(), 0, 'nothing was fetched over http');
          assertNothingCached(env);
        } finally {
          tlsMirror!.clearFault(`/v3.1.1/${file}`);
        }
      });
    }
  });
});

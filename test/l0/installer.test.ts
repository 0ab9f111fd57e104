// L0 tests for CosignInstaller@1: MockTestRunner against the unbundled task,
// fully offline (tr.nodePath = process.execPath). The scenario file
// (scenarios/installer-scenario.ts) serves a release from a mirror inside the
// task's own process and logs every connection (L0-CONNECT), mirror request
// (L0-MIRROR) and child process (L0-CHILD), so a test can prove that a bad
// input made no download and ran nothing.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { sha256 } from '../harness/mirror';
import { tempDir } from '../harness/paths';
import { CHECKSUM_TABLE as table, PLATFORMS, UNSUPPORTED } from '../helpers/platforms';
import { runL0Scenario } from '../helpers/l0';
import type { VsoCommand } from '../harness/vso';
import type { InstallerScenario } from './scenarios/installer-scenario';

const SCENARIO = path.join(__dirname, 'scenarios', 'installer-scenario.js');

interface L0Run {
  tr: MockTestRunner;
  agentDir: string;
  /** Paths the in-process mirror was asked for. */
  mirrorRequests: string[];
  connects: string[];
  children: string[];
  /** The error issue of the run (the Failed message). */
  error: string;
  /** ##vso[task.setvariable] outputs. */
  outputs: Record<string, string>;
  /** Every agent command the task printed. */
  commands: VsoCommand[];
}

const agentDirs: string[] = [];

async function runScenario(s: Omit<InstallerScenario, 'agentDir'> & { agentDir?: string }): Promise<L0Run> {
  const agentDir = s.agentDir ?? tempDir('l0-installer');
  agentDirs.push(agentDir);
  const { tr, pick, outputs, commands } = await runL0Scenario(SCENARIO, 'CosignInstallerV1', { ...s, agentDir });
  return {
    tr,
    agentDir,
    mirrorRequests: pick('L0-MIRROR'),
    connects: pick('L0-CONNECT'),
    children: pick('L0-CHILD'),
    error: tr.errorIssues.join(' | '),
    outputs,
    commands,
  };
}

function dump(r: L0Run): string {
  return `--- stdout ---\n${r.tr.stdout}\n--- stderr ---\n${r.tr.stderr}`;
}

/** Failed, exactly one one-line error naming the input, and nothing fetched, cached or run. */
function assertRefused(r: L0Run, input: string): void {
  assert.strictEqual(r.tr.succeeded, false, dump(r));
  assert.strictEqual(r.tr.errorIssues.length, 1, dump(r));
  const msg = r.tr.errorIssues[0];
  assert.ok(!/[\r\n]/.test(msg), `one line: ${msg}`);
  assert.ok(msg.includes(`'${input}'`), `names the input '${input}': ${msg}`);
  assert.ok(!/\n\s+at /.test(r.tr.stdout), 'no stack trace');
  assert.deepStrictEqual(r.connects, [], `no connection attempted\n${dump(r)}`);
  assert.deepStrictEqual(r.mirrorRequests, [], 'no request reached the mirror');
  assert.deepStrictEqual(r.children, [], 'no child process');
  assert.deepStrictEqual(fs.readdirSync(path.join(r.agentDir, 'tools')), [], 'tool cache untouched');
  assert.deepStrictEqual(leftovers(path.join(r.agentDir, 'temp')), [], 'temp untouched');
}

/** Entries of the agent's temp folder, without task-lib's own vault key file (.taskkey). */
function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f !== '.taskkey');
}

/** A stand-in cosign: a script that reports a version the way `cosign version --json` does. */
function fakeCosign(gitVersion: string): string {
  return `#!/bin/sh\nprintf '%s\\n' '{"gitVersion":"${gitVersion}","gitCommit":"x","platform":"linux/amd64"}'\n`;
}

describe('CosignInstaller@1 L0', function () {
  this.timeout(60_000);
  afterEach(() => {
    for (const d of agentDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  describe('inputs', () => {
    it('reads version, checksum and downloadBaseUrl and installs from that mirror', async () => {
      const script = fakeCosign('v3.1.1');
      const r = await runScenario({
        inputs: { version: 'v3.1.1', checksum: sha256(script).toUpperCase(), downloadBaseUrl: '${MIRROR}/releases/' },
        serve: { '/releases/v3.1.1/cosign-linux-amd64': script },
        platform: { platform: 'linux', arch: 'x64' },
      });
      assert.ok(r.tr.succeeded, dump(r));
      assert.deepStrictEqual(r.mirrorRequests, ['GET /releases/v3.1.1/cosign-linux-amd64'], 'one download, from the given base and version');
      assert.strictEqual(r.outputs['cosignVersion'], '3.1.1');
      assert.strictEqual(r.outputs['cosignSha256'], sha256(script), 'the checksum input (any case) was the pin');
      assert.strictEqual(r.outputs['cacheHit'], 'false');
      const cosignPath = r.outputs['cosignPath'];
      assert.strictEqual(cosignPath, path.join(r.agentDir, 'tools', 'cosign', '3.1.1', 'x64', 'cosign'));
      assert.strictEqual(fs.readFileSync(cosignPath, 'utf8'), script);
      assert.ok(
        r.commands.some((c) => c.command === 'task.prependpath' && c.message.startsWith(path.dirname(cosignPath))),
        dump(r),
      );
      assert.strictEqual(r.children.length, 5, "runs cosign version once, and each command's --help once for the flag record");
      assert.ok(
        r.children.every((c) => c === r.children[0]) && path.isAbsolute(r.children[0]) && r.children[0].startsWith(path.join(r.agentDir, 'temp') + path.sep),
        `runs only the verified download, by its full path, before caching it: ${r.children.join(', ')}`,
      );
      assert.deepStrictEqual(leftovers(path.join(r.agentDir, 'temp')), [], 'no download leftovers');
      assert.ok((fs.statSync(cosignPath).mode & 0o111) !== 0, 'executable');
    });

    it('uses the default version and its table checksum when version is absent', async () => {
      const r = await runScenario({ inputs: { downloadBaseUrl: '${MIRROR}' }, serve: {}, platform: { platform: 'linux', arch: 'x64' } });
      assert.strictEqual(r.tr.succeeded, false, dump(r));
      assert.deepStrictEqual(r.mirrorRequests, [`GET /v${table.defaultVersion}/cosign-linux-amd64`]);
      assert.ok(r.error.includes('HTTP 404'), r.error);
    });

    it('treats an empty version as the default', async () => {
      const r = await runScenario({ inputs: { version: '', downloadBaseUrl: '${MIRROR}' }, platform: { platform: 'linux', arch: 'x64' } });
      assert.deepStrictEqual(r.mirrorRequests, [`GET /v${table.defaultVersion}/cosign-linux-amd64`], dump(r));
    });

    it('reads timeoutSeconds: a mirror that never answers fails the task once it runs out', async () => {
      const started = Date.now();
      const r = await runScenario({
        inputs: { version: '3.1.1', checksum: 'a'.repeat(64), downloadBaseUrl: '${MIRROR}', timeoutSeconds: '1' },
        stall: ['/v3.1.1/cosign-linux-amd64'],
        platform: { platform: 'linux', arch: 'x64' },
      });
      const took = Date.now() - started;
      assert.strictEqual(r.tr.succeeded, false, dump(r));
      assert.strictEqual(r.tr.errorIssues.length, 1, dump(r));
      assert.match(r.error, /^Could not download \S+\/v3\.1\.1\/cosign-linux-amd64 within timeoutSeconds \(1s\)/);
      assert.ok(took < 1000 + 5000, `ended after ${took} ms`);
      assert.deepStrictEqual(r.mirrorRequests, ['GET /v3.1.1/cosign-linux-amd64'], 'one attempt: no retry starts after the deadline');
      assert.deepStrictEqual(r.children, [], 'nothing run');
      assert.deepStrictEqual(fs.readdirSync(path.join(r.agentDir, 'tools')), [], 'nothing cached');
      assert.deepStrictEqual(leftovers(path.join(r.agentDir, 'temp')), [], 'no download leftovers');
    });

    it('refuses a binary that reports another release than requested', async () => {
      const script = fakeCosign('v3.1.0');
      const r = await runScenario({
        inputs: { version: '3.1.1', checksum: sha256(script), downloadBaseUrl: '${MIRROR}' },
        serve: { '/v3.1.1/cosign-linux-amd64': script },
        platform: { platform: 'linux', arch: 'x64' },
      });
      assert.strictEqual(r.tr.succeeded, false, dump(r));
      assert.ok(/reports cosign v3\.1\.0, but 3\.1\.1 was requested/.test(r.error), r.error);
      assert.ok(!r.commands.some((c) => c.command === 'task.prependpath'), 'a refused binary is not put on PATH');
      assert.deepStrictEqual(fs.readdirSync(path.join(r.agentDir, 'tools')), [], 'nor cached');
      assert.deepStrictEqual(leftovers(path.join(r.agentDir, 'temp')), [], 'no download leftovers');
    });
  });

  describe('bad inputs: Failed, one line naming the input, no download', () => {
    const cases: { name: string; input: string; inputs: Record<string, string> }[] = [
      { name: "version 'latest'", input: 'version', inputs: { version: 'latest' } },
      { name: "version 'v-latest'", input: 'version', inputs: { version: 'vlatest' } },
      { name: "range '3.x'", input: 'version', inputs: { version: '3.x' } },
      { name: "range '^3.0.0'", input: 'version', inputs: { version: '^3.0.0' } },
      { name: "range '>=3.0.6'", input: 'version', inputs: { version: '>=3.0.6' } },
      { name: "partial '3.0'", input: 'version', inputs: { version: '3.0' } },
      { name: 'garbage version', input: 'version', inputs: { version: 'cosign!; rm -rf /' } },
      { name: 'multi-line version', input: 'version', inputs: { version: '3.0.6\n3.1.1' } },
      { name: 'checksum of 63 hex digits', input: 'checksum', inputs: { checksum: 'a'.repeat(63) } },
      { name: 'checksum of 65 hex digits', input: 'checksum', inputs: { checksum: 'a'.repeat(65) } },
      { name: 'checksum not hex', input: 'checksum', inputs: { checksum: 'g'.repeat(64) } },
      { name: 'checksum with sha256: prefix', input: 'checksum', inputs: { checksum: 'sha256:' + 'a'.repeat(64) } },
      { name: 'ftp:// base URL', input: 'downloadBaseUrl', inputs: { downloadBaseUrl: 'ftp://127.0.0.1/cosign' } },
      { name: 'file:/// base URL', input: 'downloadBaseUrl', inputs: { downloadBaseUrl: 'file:///tmp/cosign' } },
      { name: 'base URL without a scheme', input: 'downloadBaseUrl', inputs: { downloadBaseUrl: '127.0.0.1:8080/cosign' } },
      { name: 'base URL that is not a URL', input: 'downloadBaseUrl', inputs: { downloadBaseUrl: 'not a url' } },
      { name: 'empty base URL', input: 'downloadBaseUrl', inputs: { downloadBaseUrl: 'http://' } },
      { name: 'timeoutSeconds 0', input: 'timeoutSeconds', inputs: { timeoutSeconds: '0' } },
      { name: 'timeoutSeconds over 7200', input: 'timeoutSeconds', inputs: { timeoutSeconds: '7201' } },
      { name: 'timeoutSeconds not a whole number', input: 'timeoutSeconds', inputs: { timeoutSeconds: '1.5' } },
      { name: 'timeoutSeconds with a unit', input: 'timeoutSeconds', inputs: { timeoutSeconds: '60s' } },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const r = await runScenario({ inputs: { downloadBaseUrl: '${MIRROR}', ...c.inputs }, platform: { platform: 'linux', arch: 'x64' } });
        assertRefused(r, c.input);
      });
    }
  });

  describe('platform mapping', () => {
    for (const p of PLATFORMS) {
      it(`${p.platform}/${p.arch} downloads ${p.asset} and checks it against the table's ${p.key} digest`, async () => {
        const r = await runScenario({
          inputs: { downloadBaseUrl: '${MIRROR}' },
          serve: { [`/v${table.defaultVersion}/${p.asset}`]: 'not the real cosign' },
          platform: { platform: p.platform, arch: p.arch },
        });
        assert.strictEqual(r.tr.succeeded, false, dump(r));
        assert.deepStrictEqual(r.mirrorRequests, [`GET /v${table.defaultVersion}/${p.asset}`], dump(r));
        const expected = table.versions[table.defaultVersion][p.key];
        assert.match(expected, /^[0-9a-f]{64}$/);
        assert.ok(r.error.includes(`expected ${expected}`), r.error);
        assert.ok(r.error.includes('Checksum mismatch'), r.error);
        assert.deepStrictEqual(r.children, [], 'a mismatching binary is never run');
        assert.deepStrictEqual(fs.readdirSync(path.join(r.agentDir, 'tools')), [], 'nothing cached');
      });
    }
    for (const p of UNSUPPORTED) {
      it(`${p.platform}/${p.arch} is refused with a clear error and no download`, async () => {
        const r = await runScenario({ inputs: { downloadBaseUrl: '${MIRROR}' }, platform: p });
        assert.strictEqual(r.tr.succeeded, false, dump(r));
        assert.strictEqual(r.tr.errorIssues.length, 1);
        assert.ok(r.error.includes(`platform ${p.platform}/${p.arch}`), r.error);
        assert.ok(r.error.includes('supported: linux amd64/arm64/arm/ppc64le/s390x/riscv64, darwin amd64/arm64, windows amd64'), r.error);
        assert.deepStrictEqual(r.connects, []);
        assert.deepStrictEqual(r.mirrorRequests, []);
      });
    }
  });
});

import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../harness/paths';

function demo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts', 'demo.js'), ...args],
      { cwd: ROOT, timeout: 180_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

// The README's "see it work" command (npm start = provision + build + this script).
describe('npm start: the GC incident replayed on the built-in emulator', () => {
  it('with the guard: GC is timed, the attest waits, attests the registry digest and verifies', async () => {
    const r = await demo([]);
    assert.strictEqual(r.code, 0, r.stdout + r.stderr);
    const order = [
      /RegistryMaintenance\s+DoRegistryGarbageCollection@1 starts/,
      /AttestStaging\s+Cosign@1 attest starts \(guard ON/,
      /AttestStaging\s+.*waiting/,
      /RegistryMaintenance\s+result Succeeded/,
      /AttestStaging\s+.*attempt 1\//,
      /AttestStaging\s+independent check: cosign verify-attestation .*@sha256:[0-9a-f]{64} verified/,
    ];
    let at = 0;
    for (const re of order) {
      const rest = r.stdout.slice(at);
      const m = re.exec(rest);
      assert.ok(m, `timeline line ${re} missing after offset ${at}:\n${r.stdout}`);
      at += m.index + m[0].length;
    }
    assert.match(r.stdout, /gcDurationSeconds\s+\d+/);
    // The guard's advice on ordering the stages, whole: the YAML's key lines included.
    assert.match(r.stdout, /AttestStaging\s+ {2}- stage: AttestStaging\n.*AttestStaging\s+ {4}dependsOn:\n(.*\n)?.*AttestStaging\s+ {4}- RegistryMaintenance/);
    assert.match(r.stdout, /Token endpoint: \d+ requests, 0 refused/);
    for (const f of ['RegistryMaintenance-summary.md', 'AttestStaging-summary.md']) {
      assert.ok(fs.existsSync(path.join(ROOT, 'demo-output', f)), `${f} written`);
    }
  });

  it('--no-guard replays the incident: the attest gets the 401 during GC', async () => {
    const r = await demo(['--no-guard']);
    assert.strictEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /401 Unauthorized/);
    assert.match(r.stdout, /Reproduced the incident/);
    assert.match(r.stdout, /Token endpoint: \d+ requests, [1-9]\d* refused/);
  });

  it('--replay 001: the re-run catches the published tag before any build, and the cleanup removes what a failed run pushed', async () => {
    const r = await demo(['--replay', '001']);
    assert.strictEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /the check answered in \d+ ms: Failed/);
    assert.match(r.stdout, /already exist: .*app:2\.2\.0-beta\.6 \(sha256:[0-9a-f]{64}\)/);
    assert.match(r.stdout, /skip=true/);
    assert.match(r.stdout, /removedTags\s+\S+app:2\.2\.0-beta\.7/);
    assert.match(r.stdout, /Done: the existing tag was caught before any build/);
  });
});

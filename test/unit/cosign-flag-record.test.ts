// The flag record CosignInstaller@1 writes beside the cosign it verified, and Cosign@1 reads instead
// of probing `--help`: it matches only the very file it was made for (size, mtime, inode), and a
// record that is missing, altered, oversized or out of shape only costs the probes.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  COSIGN_COMMANDS,
  FLAG_RECORD_FILE,
  binaryFlagProbe,
  flagCacheFile,
  probeFlagSet,
  recordedFlags,
  writeFlagRecord,
} from '../../tasks/common/tools/cosign';
import { addSecret } from '../../tasks/common/platform/output';
import { tempDir, tools } from '../harness/paths';

describe('unit: the cosign flag record', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  /** A copy of the real cosign 3.x in a folder of its own, as the tool cache holds it. */
  function installedCopy(): string {
    const dir = tempDir('flagrec');
    dirs.push(dir);
    const bin = path.join(dir, 'cosign');
    fs.copyFileSync(tools.cosign3, bin);
    fs.chmodSync(bin, 0o755);
    return bin;
  }

  it('records what each command lists, and reads it back for the same file', async () => {
    const bin = installedCopy();
    const flags = await probeFlagSet(bin);
    assert.deepStrictEqual(Object.keys(flags).sort(), [...COSIGN_COMMANDS].sort());
    assert.ok(flags.sign.includes('key') && flags.sign.includes('use-signing-config'), 'cosign 3.x lists --key and --use-signing-config for sign');
    writeFlagRecord(bin, flags);
    for (const c of COSIGN_COMMANDS) assert.deepStrictEqual([...(recordedFlags(bin, c) ?? [])], flags[c], c);
  });

  it('a symlink to the binary finds the record beside the file it points at', async () => {
    const bin = installedCopy();
    writeFlagRecord(bin, await probeFlagSet(bin));
    const link = path.join(tempDir('flaglink'), 'cosign');
    dirs.push(path.dirname(link));
    fs.symlinkSync(bin, link);
    assert.ok(recordedFlags(link, 'attest')?.has('predicate'));
  });

  it('does not match a file changed since (mtime), or replaced by another (inode)', async () => {
    const bin = installedCopy();
    writeFlagRecord(bin, await probeFlagSet(bin));
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(bin, later, later);
    assert.strictEqual(recordedFlags(bin, 'sign'), undefined, 'touched');
    writeFlagRecord(bin, await probeFlagSet(bin));
    const replacement = `${bin}.new`;
    fs.copyFileSync(bin, replacement);
    fs.renameSync(replacement, bin);
    assert.strictEqual(recordedFlags(bin, 'sign'), undefined, 'replaced');
  });

  it('ignores a record that is unreadable, out of shape or too large', async () => {
    const bin = installedCopy();
    const record = path.join(path.dirname(bin), FLAG_RECORD_FILE);
    const identity = (() => {
      const st = fs.statSync(bin);
      return `${st.size}|${st.mtimeMs}|${st.ino}`;
    })();
    const cases: Array<[string, string]> = [
      ['not JSON', '{'],
      ['null', 'null'],
      ['flags not a list', JSON.stringify({ identity, flags: { sign: 'key' } })],
      ['a flag out of grammar', JSON.stringify({ identity, flags: { sign: ['key', '--x;rm -rf'] } })],
      ['too large', JSON.stringify({ identity, flags: { sign: ['key'] }, pad: 'x'.repeat(300 * 1024) })],
    ];
    for (const [name, body] of cases) {
      fs.writeFileSync(record, body);
      assert.strictEqual(recordedFlags(bin, 'sign'), undefined, name);
    }
  });

  it("Cosign@1's probe uses a matching record and runs no --help (nothing written to its probe cache)", async () => {
    const bin = installedCopy();
    writeFlagRecord(bin, await probeFlagSet(bin));
    const toolsDir = tempDir('flagtools');
    dirs.push(toolsDir);
    const env = { ...process.env, AGENT_TOOLSDIRECTORY: toolsDir };
    const probe = binaryFlagProbe(bin, env);
    const listed = await probe.flags('sign');
    assert.ok(listed.listed.has('key'));
    assert.strictEqual(fs.existsSync(flagCacheFile(env)), false, 'no probe ran, so nothing was cached');
    // Without the record, the same call probes (and caches what it found).
    fs.rmSync(path.join(path.dirname(bin), FLAG_RECORD_FILE));
    await binaryFlagProbe(bin, env).flags('attest');
    assert.strictEqual(fs.existsSync(flagCacheFile(env)), true, 'a probe ran and was cached');
  });
  it('a probe whose flags carry a secret is answered but never written to the flag cache (the file outlives the task)', async () => {
    const bin = installedCopy();
    const toolsDir = tempDir('flagsecret');
    dirs.push(toolsDir);
    const env = { ...process.env, AGENT_TOOLSDIRECTORY: toolsDir };
    addSecret('cache-secret-5d2a');
    const probe = binaryFlagProbe(bin, env);
    assert.strictEqual(await probe.accepts('sign', ['--rekor-url=https://rekor.example/cache-secret-5d2a']), true);
    assert.strictEqual(await probe.accepts('sign', ['--rekor-url=https://rekor.example/public']), true);
    const text = fs.readFileSync(flagCacheFile(env), 'utf8');
    assert.ok(!text.includes('cache-secret-5d2a'), text);
    assert.ok(text.includes('rekor.example/public'), 'the probe without a secret is cached');
  });
});

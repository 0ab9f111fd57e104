// Unit tests for the installer's integrity helpers (tasks/common/tools/installer/proven-file.ts, through
// tasks/common/tools/install.ts): hashUnchanged, which hashes a file through
// one descriptor and catches a file swapped, rewritten or linked while it was checked. Each case runs in
// a child process: loading the library loads task-lib and the output layer, which must not touch
// mocha's own process. A concurrent swap is made deterministic by wrapping FileHandle.read in the child
// (the swap happens right after the first block was read), not by racing a timer.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { sha256 } from '../harness/mirror';
import { ROOT, tempDir } from '../harness/paths';

const LIB = path.join(ROOT, 'out', 'tasks', 'common', 'tools', 'install.js');
const PROVEN_FILE = path.join(ROOT, 'out', 'tasks', 'common', 'tools', 'installer', 'proven-file.js');
/** readUnchanged in the child, reported as the sha256 and length of the bytes it returned. */
const READ = `const r = await require(${JSON.stringify(PROVEN_FILE)}).readUnchanged(path.join(dir, 'cosign'));
  return { sha256: require('crypto').createHash('sha256').update(r.bytes).digest('hex'), length: r.bytes.length, changed: r.changed };`;

/** Runs `body` (an async function body with `lib`, `fs`, `path` and `dir` in scope) in a child; returns what it returns. */
function inChild<T>(dir: string, body: string): T {
  const result = path.join(dir, 'result.json');
  const code = `
    const fs = require('fs'); const path = require('path');
    const lib = require(${JSON.stringify(LIB)});
    const dir = ${JSON.stringify(dir)};
    (async () => { ${body} })().then(
      (v) => fs.writeFileSync(${JSON.stringify(result)}, JSON.stringify({ ok: v })),
      (e) => fs.writeFileSync(${JSON.stringify(result)}, JSON.stringify({ error: e.message, code: e.code })),
    );`;
  const temp = path.join(dir, 'agent-temp');
  fs.mkdirSync(temp, { recursive: true });
  const res = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', cwd: temp, env: { PATH: process.env['PATH'], AGENT_TEMPDIRECTORY: temp } });
  assert.strictEqual(res.status, 0, res.stderr);
  const out = JSON.parse(fs.readFileSync(result, 'utf8')) as { ok?: T; error?: string; code?: string };
  if (out.error !== undefined) throw Object.assign(new Error(out.error), { code: out.code });
  return out.ok as T;
}

/** Wraps FileHandle.prototype.read so `action` runs once, right after the first block was read. */
const AFTER_FIRST_READ = (action: string) => `
  const probe = await fs.promises.open(__filename === '[eval]' ? process.execPath : __filename, 'r');
  const proto = Object.getPrototypeOf(probe);
  await probe.close();
  const read = proto.read;
  let done = false;
  proto.read = async function (...args) {
    const r = await read.apply(this, args);
    if (!done) { done = true; ${action} }
    return r;
  };`;

interface Hashed {
  sha256: string;
  changed: string;
}

describe('installer integrity helpers (unit)', function () {
  this.timeout(30_000);
  let dir = '';
  beforeEach(() => {
    dir = tempDir('unit-install');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('hashUnchanged: the bytes hashed are the file at the path', () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7);

    it('an untouched file: its sha256, nothing changed', () => {
      fs.writeFileSync(path.join(dir, 'cosign'), bytes);
      const got = inChild<Hashed>(dir, `return lib.hashUnchanged(path.join(dir, 'cosign'));`);
      assert.deepStrictEqual(got, { sha256: sha256(bytes), changed: '' });
    });

    it('a file renamed over the path while it is read is caught', () => {
      fs.writeFileSync(path.join(dir, 'cosign'), bytes);
      fs.writeFileSync(path.join(dir, 'evil'), 'other bytes');
      const got = inChild<Hashed>(
        dir,
        `${AFTER_FIRST_READ(`fs.renameSync(path.join(dir, 'evil'), path.join(dir, 'cosign'));`)}
        return lib.hashUnchanged(path.join(dir, 'cosign'));`,
      );
      assert.strictEqual(got.changed, 'it was replaced by another file');
      assert.strictEqual(got.sha256, sha256(bytes), 'the digest is of the bytes read, which are no longer at the path');
      assert.strictEqual(fs.readFileSync(path.join(dir, 'cosign'), 'utf8'), 'other bytes', 'the swap really happened');
    });

    it('a file rewritten in place while it is read is caught', () => {
      fs.writeFileSync(path.join(dir, 'cosign'), bytes);
      const got = inChild<Hashed>(
        dir,
        `${AFTER_FIRST_READ(`fs.appendFileSync(path.join(dir, 'cosign'), 'appended');`)}
        return lib.hashUnchanged(path.join(dir, 'cosign'));`,
      );
      assert.strictEqual(got.changed, 'it was modified');
    });

    it('a symbolic link at the path is refused (its target is not opened)', () => {
      fs.writeFileSync(path.join(dir, 'real'), bytes);
      fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'cosign'));
      const got = inChild<Hashed>(dir, `return lib.hashUnchanged(path.join(dir, 'cosign'));`);
      assert.deepStrictEqual(got, { sha256: '', changed: 'it is a symbolic link' });
    });

    it('a path replaced by a symbolic link right after the check is caught by changedSince', () => {
      fs.writeFileSync(path.join(dir, 'cosign'), bytes);
      const got = inChild<string>(
        dir,
        `
        const file = path.join(dir, 'cosign');
        const st = fs.lstatSync(file, { bigint: true });
        fs.renameSync(file, path.join(dir, 'moved'));
        fs.symlinkSync(path.join(dir, 'moved'), file);
        return lib.changedSince(file, st);`,
      );
      assert.strictEqual(got, 'it was replaced by a symbolic link');
    });

    it('a directory is not a regular file; a missing file throws ENOENT', () => {
      fs.mkdirSync(path.join(dir, 'cosign'));
      assert.deepStrictEqual(inChild<Hashed>(dir, `return lib.hashUnchanged(path.join(dir, 'cosign'));`), { sha256: '', changed: 'it is not a regular file' });
      assert.throws(
        () => inChild(dir, `return lib.hashUnchanged(path.join(dir, 'absent'));`),
        (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
      );
    });
  });

  describe('readUnchanged: the bytes read into one buffer (for a signature over them) are the file at the path', () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 9);
    interface Read {
      sha256: string;
      length: number;
      changed: string;
    }

    it('an untouched file: all its bytes, nothing changed', () => {
      fs.writeFileSync(path.join(dir, 'cosign'), bytes);
      assert.deepStrictEqual(inChild<Read>(dir, READ), { sha256: sha256(bytes), length: bytes.length, changed: '' });
    });

    it('a file that grows while it is read is caught, and no bytes are returned', () => {
      fs.writeFileSync(path.join(dir, 'cosign'), bytes);
      const got = inChild<Read>(dir, `${AFTER_FIRST_READ(`fs.appendFileSync(path.join(dir, 'cosign'), 'appended');`)}\n${READ}`);
      assert.strictEqual(got.changed, 'it was modified');
      assert.strictEqual(got.length, 0);
    });

    it('a file renamed over the path while it is read is caught', () => {
      fs.writeFileSync(path.join(dir, 'cosign'), bytes);
      fs.writeFileSync(path.join(dir, 'evil'), 'other bytes');
      const got = inChild<Read>(dir, `${AFTER_FIRST_READ(`fs.renameSync(path.join(dir, 'evil'), path.join(dir, 'cosign'));`)}\n${READ}`);
      assert.strictEqual(got.changed, 'it was replaced by another file');
    });

    it('a symbolic link at the path is refused', () => {
      fs.writeFileSync(path.join(dir, 'real'), bytes);
      fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'cosign'));
      assert.deepStrictEqual(inChild<Read>(dir, READ), { sha256: sha256(Buffer.alloc(0)), length: 0, changed: 'it is a symbolic link' });
    });
  });
});

// The versioning rule's check (scripts/versions.js), on a copy of what ships: it passes on the
// repository as committed, fails when a task's bundle, task.json or icon changed under the recorded
// version, refuses to record such a change until the task and the extension are bumped, and with
// --base records a branch's later changes under a bump it already made.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tempDir } from '../harness/paths';

const SCRIPT = path.join(ROOT, 'scripts', 'versions.js');

function versions(root: string, ...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--root', root, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

/** What scripts/versions.js reads, copied: the manifest and every file it lists, the record, the changelog. */
function copyOfWhatShips(): string {
  const dir = tempDir('versions');
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'vss-extension.json'), 'utf8')) as { files: Array<{ path: string }> };
  const files = ['vss-extension.json', 'overview.md', 'CHANGELOG.md', path.join('configs', 'versions.json'), ...manifest.files.map((f) => f.path)];
  for (const f of files) fs.cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true });
  return dir;
}

function editJson(file: string, edit: (j: Record<string, any>) => void): void {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j, null, 2));
}

const bumpTask = (dir: string, patch: number) =>
  editJson(path.join(dir, 'tasks', 'RegistryTagCheckV1', 'task.json'), (j) => {
    j.version.Patch = patch;
  });
const bumpExtension = (dir: string, version: string) => {
  editJson(path.join(dir, 'vss-extension.json'), (j) => {
    j.version = version;
  });
  fs.appendFileSync(path.join(dir, 'CHANGELOG.md'), `\n## ${version}\n\nA change.\n`);
};
const changeBundle = (dir: string, marker: string) => fs.appendFileSync(path.join(dir, 'tasks', 'RegistryTagCheckV1', 'index.js'), `\n// ${marker}\n`);
const recordedPatch = (dir: string) =>
  (JSON.parse(fs.readFileSync(path.join(dir, 'configs', 'versions.json'), 'utf8')) as { tasks: Record<string, { version: string }> }).tasks.RegistryTagCheckV1
    .version;

describe('unit: the versioning rule (scripts/versions.js)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const fresh = () => {
    const d = copyOfWhatShips();
    dirs.push(d);
    return d;
  };

  it('the repository as built matches its record (the check npm test runs)', () => {
    const r = versions(ROOT, '--check');
    assert.strictEqual(r.code, 0, r.out);
    assert.match(r.out, /up to date: extension \d+\.\d+\.\d+/);
  });

  it('a copy in another folder has the same fingerprints (no absolute path in them)', () => {
    const r = versions(fresh(), '--check');
    assert.strictEqual(r.code, 0, r.out);
  });

  for (const [what, change] of [
    ['bundle', (d: string) => changeBundle(d, 'a fix')],
    ['task.json', (d: string) => editJson(path.join(d, 'tasks', 'RegistryTagCheckV1', 'task.json'), (j) => (j.helpMarkDown += ' More.'))],
    ['icon', (d: string) => fs.appendFileSync(path.join(d, 'tasks', 'RegistryTagCheckV1', 'icon.png'), Buffer.from([0]))],
  ] as const) {
    it(`a task whose ${what} changed under its recorded version fails the check, naming it and what to do`, () => {
      const d = fresh();
      change(d);
      const r = versions(d, '--check');
      assert.strictEqual(r.code, 1);
      assert.match(r.out, /RegistryTagCheckV1: what ships changed since 1\.\d+\.\d+ was recorded: bump its version in tasks\/RegistryTagCheckV1\/task\.json/);
      assert.match(r.out, /extension: what ships changed/);
      assert.doesNotMatch(r.out, /CosignV1/, 'only the changed task is named');
    });
  }

  it('a reformatted task.json (same JSON) is no change', () => {
    const d = fresh();
    const file = path.join(d, 'tasks', 'RegistryTagCheckV1', 'task.json');
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, JSON.stringify(JSON.parse(text), null, 4));
    assert.notStrictEqual(fs.readFileSync(file, 'utf8'), text);
    assert.strictEqual(versions(d, '--check').code, 0);
  });

  it('--record refuses a change under the same version, then a task bump without the extension bump, then records both', () => {
    const d = fresh();
    const before = recordedPatch(d);
    changeBundle(d, 'a fix');
    let r = versions(d, '--record');
    assert.strictEqual(r.code, 1);
    assert.match(r.out, /RegistryTagCheckV1: what ships changed, but its version is still/);
    bumpTask(d, Number(before.split('.')[2]) + 1);
    r = versions(d, '--record');
    assert.strictEqual(r.code, 1);
    assert.match(r.out, /extension: what ships changed, but its version is still .* in vss-extension\.json/);
    assert.doesNotMatch(r.out, /RegistryTagCheckV1/);
    bumpExtension(d, '99.0.0');
    r = versions(d, '--record');
    assert.strictEqual(r.code, 0, r.out);
    assert.notStrictEqual(recordedPatch(d), before);
    assert.strictEqual(versions(d, '--check').code, 0);
  });

  it('a version that goes down, a missing CHANGELOG section and a missing releaseNotes are refused', () => {
    const d = fresh();
    bumpTask(d, 0);
    editJson(path.join(d, 'tasks', 'RegistryTagCheckV1', 'task.json'), (j) => {
      j.version.Minor = 0;
      j.version.Major = 0;
      delete j.releaseNotes;
    });
    editJson(path.join(d, 'vss-extension.json'), (j) => {
      j.version = '98.0.0';
    });
    const r = versions(d, '--record');
    assert.strictEqual(r.code, 1);
    assert.match(r.out, /RegistryTagCheckV1: version 0\.0\.0 is below the recorded/);
    assert.match(r.out, /CHANGELOG\.md has no '## 98\.0\.0' section/);
    assert.match(r.out, /RegistryTagCheckV1: task\.json has no releaseNotes/);
  });

  it('--base REF: a branch that already bumped records later changes under that bump', () => {
    const d = fresh();
    const git = (...args: string[]) => {
      const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: d, encoding: 'utf8' });
      assert.strictEqual(r.status, 0, r.stderr);
    };
    git('init', '-q');
    git('add', '-A');
    git('commit', '-qm', 'base');
    const next = Number(recordedPatch(d).split('.')[2]) + 1;
    changeBundle(d, 'first change');
    bumpTask(d, next);
    bumpExtension(d, '99.0.0');
    assert.strictEqual(versions(d, '--record').code, 0);
    changeBundle(d, 'second change on the same branch');
    assert.strictEqual(versions(d, '--record').code, 1, 'against the working record, the version is unchanged');
    const r = versions(d, '--record', '--base', 'HEAD');
    assert.strictEqual(r.code, 0, r.out);
    assert.strictEqual(versions(d, '--check').code, 0);
    assert.strictEqual(versions(d, '--record', '--base', 'no-such-revision').code, 1, 'a base that is not a revision is an error');
    git('rm', '-q', '--cached', path.join('configs', 'versions.json'));
    git('commit', '-qm', 'a revision without the record');
    changeBundle(d, 'a change on a branch from before the record');
    assert.strictEqual(versions(d, '--record', '--base', 'HEAD').code, 0, 'a base without the record bounds nothing');
  });
});

// Which Debian mirror the provisioning script uses: read from this machine's apt sources (the
// one-line and the deb822 formats), never a host written in the repository. Sample apt folders of
// our own, no network.
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tempDir } from '../harness/paths';

const { debianMirrors } = require(path.join(ROOT, 'scripts', 'apt-mirror.js')) as { debianMirrors: (etc: string) => string[] };
const SCRIPT = path.join(ROOT, 'scripts', 'apt-mirror.js');

/** An apt folder with `sources.list` and files in `sources.list.d/`. */
function aptDir(files: Record<string, string>): string {
  const etc = tempDir('apt');
  fs.mkdirSync(path.join(etc, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(etc, name), text);
  return etc;
}

function cli(etc: string, env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [SCRIPT, etc], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer; stderr: Buffer };
    return { code: e.status, stdout: e.stdout.toString(), stderr: e.stderr.toString() };
  }
}

describe('unit: the Debian mirror from the machine apt sources', () => {
  it('one mirror in sources.list (options, comments and deb-src lines around it)', () => {
    const etc = aptDir({
      'sources.list': [
        '# the corporate mirror',
        'deb-src http://mirror.example.corp/debian bookworm main',
        'deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example.corp/debian/ bookworm main contrib',
        'deb http://mirror.example.corp/debian-security bookworm-security main',
        '',
      ].join('\n'),
    });
    assert.deepStrictEqual(debianMirrors(etc), ['http://mirror.example.corp/debian']);
  });

  it('a deb822 .sources file: URIs of deb stanzas, the security archive and disabled stanzas skipped', () => {
    const etc = aptDir({
      'sources.list.d/debian.sources': [
        'Types: deb',
        '# http://snapshot.example/archive/debian/20250520T000000Z',
        'URIs: https://apt.example.net/debian',
        'Suites: bookworm bookworm-updates',
        'Components: main',
        '',
        'Types: deb',
        'URIs: https://apt.example.net/debian-security',
        'Suites: bookworm-security',
        'Components: main',
        '',
        'Enabled: no',
        'Types: deb',
        'URIs: https://disabled.example/debian',
        'Suites: bookworm',
        '',
        'Types: deb-src',
        'URIs: https://src-only.example/debian',
        'Suites: bookworm',
      ].join('\n'),
    });
    assert.deepStrictEqual(debianMirrors(etc), ['https://apt.example.net/debian']);
  });

  it('several mirrors: all of them, in the order apt reads them (sources.list first, then sources.list.d by name)', () => {
    const etc = aptDir({
      'sources.list': 'deb http://first.example/debian bookworm main\n',
      'sources.list.d/b.list': 'deb http://third.example/debian trixie main\n',
      'sources.list.d/a.sources': 'Types: deb\nURIs: http://second.example/debian\n  http://second-b.example/debian\nSuites: trixie\n',
      'sources.list.d/other.list.disabled-by-farm': 'deb http://ignored.example/debian bookworm main\n',
    });
    assert.deepStrictEqual(debianMirrors(etc), [
      'http://first.example/debian',
      'http://second.example/debian',
      'http://second-b.example/debian',
      'http://third.example/debian',
    ]);
  });

  it('none (only a commented-out line): the script says how to set one, in one line, and exits 2', () => {
    const etc = aptDir({ 'sources.list': '# deb http://commented.example/debian bookworm main\n' });
    assert.deepStrictEqual(debianMirrors(etc), []);
    const r = cli(etc);
    assert.strictEqual(r.code, 2);
    assert.strictEqual(r.stdout, '');
    assert.match(r.stderr, /^provision: no Debian mirror found .*set CGG_DEBIAN_MIRROR/);
    assert.strictEqual(r.stderr.trim().split('\n').length, 1);
  });

  it('CGG_DEBIAN_MIRROR overrides what apt says; without it the first mirror is printed', () => {
    const etc = aptDir({ 'sources.list': 'deb http://first.example/debian bookworm main\ndeb http://second.example/debian bookworm main\n' });
    assert.strictEqual(cli(etc).stdout.trim(), 'http://first.example/debian');
    assert.strictEqual(cli(etc, { CGG_DEBIAN_MIRROR: 'https://override.example/debian/' }).stdout.trim(), 'https://override.example/debian');
  });

  it('no package host is written in the repository', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT }).toString().split('\n').filter(Boolean);
    const hits = tracked.filter(
      (f) => /\.(sh|js|ts|md|json|mjs)$/.test(f) && /\bdeb\.debian\.org\b|\bsecurity\.debian\.org\b/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')),
    );
    assert.deepStrictEqual(hits, []);
  });
});

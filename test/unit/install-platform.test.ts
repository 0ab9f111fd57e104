// Unit test of the installer's platform mapping (tasks/common/tools/install.ts cosignPlatform): every
// supported Node platform/arch pair maps to its checksum-table key and release asset, the rest are
// refused with a UserError. In a child process: loading the library loads task-lib, which must not
// touch mocha's process. (The task's own behaviour per platform is in test/l0/installer.test.ts.)
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tempDir } from '../harness/paths';
import { CHECKSUM_TABLE as table, PLATFORMS, UNSUPPORTED } from '../helpers/platforms';

describe('unit: CosignInstaller@1 platform mapping', () => {
  it('cosignPlatform() maps every supported pair and refuses the rest (unit)', () => {
    // In a child process: importing the library loads task-lib, which must not touch mocha's process.
    const lib = path.join(ROOT, 'out', 'tasks', 'common', 'tools', 'install.js');
    const code = `
      const { cosignPlatform } = require(${JSON.stringify(lib)});
      const out = {};
      for (const [p, a] of JSON.parse(process.argv[1])) {
        try { out[p + '/' + a] = cosignPlatform(p, a); } catch (e) { out[p + '/' + a] = { error: e.message, name: e.name }; }
      }
      process.stdout.write(JSON.stringify(out));`;
    const pairs = [...PLATFORMS, ...UNSUPPORTED].map((p) => [p.platform, p.arch]);
    // task-lib writes its vault key (.taskkey) into Agent.TempDirectory, else the working folder: keep it in a temp one.
    const temp = tempDir('l0-platform');
    const res = spawnSync(process.execPath, ['-e', code, JSON.stringify(pairs)], {
      encoding: 'utf8',
      cwd: temp,
      env: { PATH: process.env['PATH'], AGENT_TEMPDIRECTORY: temp },
    });
    fs.rmSync(temp, { recursive: true, force: true });
    assert.strictEqual(res.status, 0, res.stderr);
    const got = JSON.parse(res.stdout.slice(res.stdout.indexOf('{"'))) as Record<
      string,
      { key?: string; asset?: string; binaryName?: string; error?: string; name?: string }
    >;
    for (const p of PLATFORMS) {
      assert.deepStrictEqual(got[`${p.platform}/${p.arch}`], {
        key: p.key,
        asset: p.asset,
        binaryName: p.platform === 'win32' ? 'cosign.exe' : 'cosign',
      });
      assert.ok(table.versions[table.defaultVersion][p.key], `table has ${p.key}`);
    }
    assert.strictEqual(Object.keys(table.versions[table.defaultVersion]).length, PLATFORMS.length, 'nine platform digests in the table');
    for (const p of UNSUPPORTED) {
      const e = got[`${p.platform}/${p.arch}`];
      assert.strictEqual(e.name, 'UserError');
      assert.ok(e.error?.includes(`${p.platform}/${p.arch}`), e.error);
    }
  });
});

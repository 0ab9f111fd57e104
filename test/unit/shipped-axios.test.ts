// What ships runs the axios the tests run: the unbundled HTTP client (what the unit and L0 tests
// load) requires the one lean build vendor/axios.js, and every task bundle was built from that same
// file, byte for byte, and from no other axios or form-data file (scripts/build.js writes each
// bundle's inputs to out/bundle-inputs/).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../harness/paths';

const LEAN_AXIOS = path.join(ROOT, 'vendor', 'axios.js');
const STRAY = /(^|[\\/])node_modules[\\/](axios|form-data)[\\/]/;

describe('the axios that ships is the axios the tests run', () => {
  it('the unbundled HTTP client loads vendor/axios.js and no axios from node_modules', () => {
    const client = path.join(ROOT, 'out', 'tasks', 'common', 'platform', 'http.js');
    require(client);
    const children = (require.cache[client]?.children ?? []).map((m) => m.filename);
    assert.ok(children.includes(LEAN_AXIOS), `http.js requires ${children.join(', ')}`);
    assert.deepStrictEqual(
      children.filter((f) => STRAY.test(f)),
      [],
    );
  });

  it('every task bundle inlines that same vendor/axios.js and no other axios file', () => {
    const folder = path.join(ROOT, 'out', 'bundle-inputs');
    const tasks = fs.readdirSync(path.join(ROOT, 'tasks')).filter((d) => fs.existsSync(path.join(ROOT, 'tasks', d, 'index.ts')));
    assert.ok(tasks.length >= 6, `tasks found: ${tasks.join(', ')}`);
    for (const task of tasks) {
      const inputs = JSON.parse(fs.readFileSync(path.join(folder, `${task}.json`), 'utf8')) as Record<string, { bytes: number }>;
      assert.strictEqual(inputs['vendor/axios.js']?.bytes, fs.statSync(LEAN_AXIOS).size, `${task}: vendor/axios.js as the tests load it`);
      assert.deepStrictEqual(
        Object.keys(inputs).filter((f) => STRAY.test(f)),
        [],
        `${task} bundles axios from node_modules`,
      );
      const bundled = fs.statSync(path.join(ROOT, 'tasks', task, 'index.js')).mtimeMs;
      assert.ok(fs.statSync(LEAN_AXIOS).mtimeMs <= bundled, `${task}: its bundle is older than vendor/axios.js`);
    }
  });
});

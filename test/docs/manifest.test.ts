// What an adopter sees first, held against what ships: the manifest is flagged Preview, names every
// task in its description, and each task has an icon of its own; the README's first table names
// every task; the release overrides are private, as the README says.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../harness/paths';

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');
const manifest = JSON.parse(read('vss-extension.json')) as { galleryFlags?: string[]; description: string; version: string };
const TASKS = fs
  .readdirSync(path.join(ROOT, 'tasks'))
  .filter((d) => fs.existsSync(path.join(ROOT, 'tasks', d, 'task.json')))
  .map((d) => ({ folder: d, task: JSON.parse(read(path.join('tasks', d, 'task.json'))) as { name: string; version: { Major: number } } }));

describe('docs: the manifest and the README introduce every task', () => {
  it('the extension is flagged Preview until it has run on a real DigitalOcean registry', () => {
    assert.ok(manifest.galleryFlags?.includes('Preview'), JSON.stringify(manifest.galleryFlags));
    assert.match(read('README.md'), /\*\*Preview\*\*/);
  });

  it('the Marketplace description fits its 200 characters and mentions what every task does', () => {
    assert.ok(manifest.description.length <= 200, `${manifest.description.length} characters`);
    for (const word of [/cosign install/, /GC,? timed/, /GC guard/, /sign\/attest/, /tag check/, /cleanup/]) assert.match(manifest.description, word);
  });

  it("the README's first table names every task", () => {
    const readme = read('README.md');
    const table = readme.slice(readme.indexOf('| task | what it does |'), readme.indexOf('## The two commands'));
    for (const { task } of TASKS) assert.ok(table.includes(`\`${task.name}@${task.version.Major}\``), `${task.name} in the first table`);
  });

  it('each task has its own icon: a 32x32 PNG, no two alike', () => {
    const seen = new Map<string, string>();
    for (const { folder } of TASKS) {
      const png = fs.readFileSync(path.join(ROOT, 'tasks', folder, 'icon.png'));
      assert.strictEqual(png.subarray(1, 4).toString('latin1'), 'PNG', folder);
      assert.deepStrictEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [32, 32], `${folder}: 32x32`);
      const key = png.toString('base64');
      assert.ok(!seen.has(key), `${folder} has the same icon as ${seen.get(key)}`);
      seen.set(key, folder);
    }
  });

  it('the release overrides ship private, as the README says', () => {
    const release = JSON.parse(read(path.join('configs', 'release.json'))) as { public: boolean };
    assert.strictEqual(release.public, false);
    assert.match(read('README.md'), /ships as `\{"publisher": "YOUR-PUBLISHER-ID", "public": false\}`/);
  });
});

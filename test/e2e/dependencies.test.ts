import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../harness/paths';

/** Every folder named `name` under node_modules, at any depth. */
function copiesOf(name: string, dir = path.join(ROOT, 'node_modules'), found: string[] = []): string[] {
  if (!fs.existsSync(dir)) return found;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const full = path.join(dir, entry.name);
    if (entry.name.startsWith('@')) {
      copiesOf(name, full, found);
      continue;
    }
    if (entry.name === name) found.push(full);
    const nested = path.join(full, 'node_modules');
    if (fs.existsSync(nested)) copiesOf(name, nested, found);
  }
  return found;
}

describe('dependencies', () => {
  it('exactly one copy of azure-pipelines-task-lib (two copies split its vault and inputs)', () => {
    const copies = copiesOf('azure-pipelines-task-lib').map((p) => path.relative(ROOT, p));
    assert.deepStrictEqual(copies, [path.join('node_modules', 'azure-pipelines-task-lib')]);
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'azure-pipelines-task-lib', 'package.json'), 'utf8')).version as string;
    const [major, minor] = version.split('.').map(Number);
    assert.ok(major === 5 && minor >= 281, `task-lib ${version} is ^5.281.0`);
  });
});

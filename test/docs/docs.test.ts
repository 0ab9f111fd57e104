import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as path from 'path';
import { ROOT } from '../harness/paths';

describe('docs', () => {
  it('README task reference matches every task.json (node scripts/docs.js --check)', () => {
    let out = '';
    try {
      out = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'docs.js'), '--check'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      assert.fail(`README is stale: ${(err as { stderr?: string }).stderr}`);
    }
    assert.match(out, /up to date/);
  });

  it('README names the two commands and .ci/run calls the test command', () => {
    const fs = require('fs') as typeof import('fs');
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.match(readme, /npm ci && npm test/);
    assert.match(readme, /npm ci && npm start/);
    const ci = fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');
    assert.match(ci, /npm ci && npm test/);
  });
});

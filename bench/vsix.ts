// VSIX size: the dev package with every task in it must stay at most 1.5 MB
// (task-lib, tool-lib and axios unbundled would weigh about 4 MB zipped per task).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { BenchRow } from './types';
import { printWhenRunDirectly } from './types';

const ROOT = path.resolve(__dirname, '..', '..');
const LIMIT_BYTES = 1.5 * 1000 * 1000;

function vsixPath(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'vss-extension.json'), 'utf8'));
  const dev = JSON.parse(fs.readFileSync(path.join(ROOT, 'configs', 'dev.json'), 'utf8'));
  return path.join(ROOT, 'dist', 'dev', `${dev.publisher}.${manifest.id}-${manifest.version}.vsix`);
}

/** File names in a zip, from its central directory. */
function zipEntries(file: string): string[] {
  const buf = fs.readFileSync(file);
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error(`${file} is not a zip`);
  const names: string[] = [];
  let p = buf.readUInt32LE(eocd + 16);
  for (let n = buf.readUInt16LE(eocd + 10); n > 0; n--) {
    const nameLen = buf.readUInt16LE(p + 28);
    names.push(buf.toString('utf8', p + 46, p + 46 + nameLen));
    p += 46 + nameLen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
  }
  return names;
}

export async function run(): Promise<BenchRow[]> {
  // Always package afresh so the figure is the current tree's.
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'package.js'), '--dev'], { cwd: ROOT, stdio: 'pipe' });
  const vsix = vsixPath();
  const size = fs.statSync(vsix).size;
  const packed = zipEntries(vsix)
    .map((f) => /^tasks\/([^/]+)\/task\.json$/.exec(f)?.[1])
    .filter((t): t is string => !!t)
    .sort();
  const repo = fs.readdirSync(path.join(ROOT, 'tasks')).filter((d) => fs.existsSync(path.join(ROOT, 'tasks', d, 'task.json')));
  const missing = repo.filter((t) => !packed.includes(t));
  return [
    {
      figure: `VSIX size (${packed.length} task${packed.length === 1 ? '' : 's'}: ${packed.join(', ')}${missing.length ? `; NOT in it yet: ${missing.join(', ')}` : ''})`,
      target: '<= 1.5 MB',
      measured: `${(size / 1e6).toFixed(3)} MB (${size} bytes)`,
      // "with every task in it": a VSIX missing a task of the repository does not count.
      pass: size <= LIMIT_BYTES && missing.length === 0,
    },
  ];
}

if (require.main === module) printWhenRunDirectly(run);

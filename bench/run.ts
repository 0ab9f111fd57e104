// One command for every benchmark: runs each bench/*.ts module's run() and
// prints one table (figure, target, measured, pass/fail). Exit code 0 even on
// a miss: benchmarks report, tests assert.
import * as fs from 'fs';
import * as path from 'path';
import { BenchRow, verdict } from './types';

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const modules = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.js') && !['run.js', 'types.js'].includes(f))
    .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
    .sort();
  const rows: Array<BenchRow & { bench: string }> = [];
  for (const file of modules) {
    const mod = require(path.join(__dirname, file)) as { run?: () => Promise<BenchRow[]> };
    if (typeof mod.run !== 'function') continue;
    const bench = file.replace(/\.js$/, '');
    process.stderr.write(`bench: running ${bench}...\n`);
    try {
      for (const row of await mod.run()) rows.push({ ...row, bench });
    } catch (err) {
      rows.push({ bench, figure: '(bench failed)', target: '-', measured: String((err as Error).message || err), pass: false });
    }
  }
  const header = ['bench', 'figure', 'target', 'measured', 'result'];
  const table = rows.map((r) => [r.bench, r.figure, r.target, r.measured, verdict(r)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const t of table) console.log(line(t));
  const judged = rows.filter((r) => r.pass !== undefined);
  console.log(
    `\n${judged.filter((r) => r.pass).length} of ${judged.length} figures with a target within it (${rows.length - judged.length} more without a target)`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

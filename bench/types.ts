/**
 * One printed figure of a benchmark: what was measured, its target, the value, and whether it is
 * within target. A figure without a target (one for scale, a curve) has no verdict: `pass` is
 * undefined, never a `true` written in.
 */
export interface BenchRow {
  figure: string;
  target: string;
  measured: string;
  pass?: boolean;
}

/** How a verdict prints. */
export function verdict(row: BenchRow): string {
  return row.pass === undefined ? '-' : row.pass ? 'PASS' : 'FAIL';
}

/** Median of a non-empty list of numbers. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Prints rows as a small table (for `node out/bench/<name>.js`). */
export function printRows(rows: BenchRow[]): void {
  for (const r of rows) console.log(`${verdict(r).padEnd(4)}  ${r.figure}: ${r.measured} (target ${r.target})`);
}

/** The tail of every bench module: `if (require.main === module) printWhenRunDirectly(run);` */
export function printWhenRunDirectly(run: () => Promise<BenchRow[]>): void {
  run()
    .then(printRows)
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}

/** Runs `a` then `b` on even rounds and `b` then `a` on odd ones, so neither side always goes first. */
export async function inTurn(round: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<void> {
  if (round % 2 === 0) {
    await a();
    await b();
  } else {
    await b();
    await a();
  }
}

'use strict';
// The spec reporter, plus one plain closing line "N passed, N failed" that CI reads.
// Before it, the suite-wide totals lines (reliability, hostile), summed over the totals every test
// process wrote (one process run serially, one per worker in parallel mode).
const fs = require('fs');
const path = require('path');
const Mocha = require('mocha');
const { EVENT_RUN_END } = Mocha.Runner.constants;

const OUT = path.resolve(__dirname, '..', 'out');
const TOTALS_DIR = path.join(OUT, 'test-totals');

function readTotals(kind) {
  if (!fs.existsSync(TOTALS_DIR)) return [];
  return fs
    .readdirSync(TOTALS_DIR)
    .filter((f) => f.startsWith(`${kind}-`) && f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(TOTALS_DIR, f), 'utf8')));
}

function printTotals() {
  const scans = readTotals('reliability');
  if (scans.length) process.stdout.write(`\n${require(path.join(OUT, 'test', 'harness', 'secrets.js')).reliabilityLine(scans)}\n`);
  const hostile = readTotals('hostile').flat();
  if (hostile.length) process.stdout.write(`${require(path.join(OUT, 'test', 'hostile', 'properties.js')).hostileTotalsLine(hostile)}\n`);
}

class SpecWithTotals extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    fs.rmSync(TOTALS_DIR, { recursive: true, force: true });
    runner.once(EVENT_RUN_END, () => {
      printTotals();
      const s = runner.stats || {};
      process.stdout.write(`\n${s.passes || 0} passed, ${s.failures || 0} failed, ${s.pending || 0} skipped\n`);
    });
  }
}
module.exports = SpecWithTotals;

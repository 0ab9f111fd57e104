'use strict';
// The spec reporter, plus one plain closing line "N passed, N failed" that CI reads.
// Before it, the suite-wide totals lines (reliability, hostile), summed over the totals every test
// process wrote (one process run serially, one per worker in parallel mode).
const fs = require('fs');
const path = require('path');
const Mocha = require('mocha');
const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

const OUT = path.resolve(__dirname, '..', 'out');
const TOTALS_DIR = path.join(OUT, 'test-totals');

function readTotals(kind) {
  if (!fs.existsSync(TOTALS_DIR)) return [];
  return fs
    .readdirSync(TOTALS_DIR)
    .filter((f) => f.startsWith(`${kind}-`) && f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(TOTALS_DIR, f), 'utf8')));
}

/** The task runs the suite started (every runTask call notes one), from each process's log. */
function startedRuns() {
  if (!fs.existsSync(TOTALS_DIR)) return 0;
  return fs
    .readdirSync(TOTALS_DIR)
    .filter((f) => f.startsWith('started-') && f.endsWith('.log'))
    .reduce((n, f) => n + fs.readFileSync(path.join(TOTALS_DIR, f), 'utf8').split('\n').filter(Boolean).length, 0);
}

/** Why the secret scan does not hold, when it does not: runs it never read, or secrets it found. */
function scanFailures() {
  const scans = readTotals('reliability');
  const scanned = scans.reduce((n, t) => n + t.runs, 0);
  const leaks = scans.reduce((n, t) => n + t.leaks, 0);
  const started = startedRuns();
  const out = [];
  if (scanned < started) out.push(`secret scan: ${scanned} of the ${started} task runs the suite made were scanned`);
  if (leaks > 0) out.push(`secret scan: ${leaks} secret value(s) found in task output or child argv`);
  return out;
}

function printTotals() {
  const scans = readTotals('reliability');
  if (scans.length) process.stdout.write(`\n${require(path.join(OUT, 'test', 'harness', 'secrets.js')).reliabilityLine(scans)}\n`);
  const hostile = readTotals('hostile').flat();
  if (hostile.length) process.stdout.write(`${require(path.join(OUT, 'test', 'hostile', 'properties.js')).hostileTotalsLine(hostile)}\n`);
}

/**
 * The skipped tests no platform record covers (test/helpers/skip.ts onlyOn): a test that skipped
 * itself for any other reason, e.g. a tool missing on a fresh machine. Written to a file that
 * scripts/test.sh turns into a failed run.
 */
function unjustifiedSkips(pending) {
  const records = fs.existsSync(TOTALS_DIR)
    ? fs
        .readdirSync(TOTALS_DIR)
        .filter((f) => f.startsWith('skip-') && f.endsWith('.json'))
        .map((f) => JSON.parse(fs.readFileSync(path.join(TOTALS_DIR, f), 'utf8')))
    : [];
  return pending.filter((title) => !records.some((r) => r.title !== '' && title.startsWith(r.title)));
}

class SpecWithTotals extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    fs.rmSync(TOTALS_DIR, { recursive: true, force: true });
    const pending = [];
    runner.on(EVENT_TEST_PENDING, (test) => pending.push(test.fullTitle()));
    runner.once(EVENT_RUN_END, () => {
      printTotals();
      const s = runner.stats || {};
      const bad = unjustifiedSkips(pending);
      const failures = [...scanFailures(), ...bad.map((t) => `skipped without a named platform (onlyOn): ${t}`)];
      if (failures.length) {
        fs.mkdirSync(TOTALS_DIR, { recursive: true });
        fs.writeFileSync(path.join(TOTALS_DIR, 'suite-failures.txt'), failures.join('\n') + '\n');
        process.stdout.write(`\n${failures.join('\n')}\n`);
      }
      process.stdout.write(`\n${s.passes || 0} passed, ${(s.failures || 0) + failures.length} failed, ${s.pending || 0} skipped\n`);
    });
  }
}
module.exports = SpecWithTotals;

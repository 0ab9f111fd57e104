// Suite-wide secret scan. Every run of a bundled task through runTask() (any test file) is
// recorded here with its stdout, stderr and argv; every secret value the tests hand to a task
// (DO tokens, registry passwords, key passwords, the job access token) is registered, either
// explicitly with registerSecret() or automatically from the run's environment. At the end of
// each test file (test/reliability/hooks.ts, a root hook plugin, or the reliability suite's root
// `after`), finalScan() looks for every registered secret in every line recorded since the last
// scan and in every argv file a wrapper recorded; one hit fails the suite.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { isCommand, unescapeAll } from './vso';

/** Known constants: the emulator's defaults (test/harness/emulator/) and the demo's key password. */
export const KNOWN_SECRETS = ['dop_v1_emulator_token', 'ado_job_access_token', 'demo-key-password'];

/** The shape of the passwords test/harness/keys.ts generates by default (`pw-<base36>-secret`). */
export const SECRET_PATTERNS: RegExp[] = [/\bpw-[a-z0-9]{4,}-secret\b/];

/** Shorter values would match by accident ('true', 'x'); no real test secret is this short. */
const MIN_SECRET_LENGTH = 6;

export interface RecordedRun {
  task: string;
  argv: string[];
  stdout: string;
  stderr: string;
}

interface State {
  secrets: Set<string>;
  runs: RecordedRun[];
  argvFiles: Set<string>;
  counters: Record<string, number>;
  /** How many runs and argv files the scans so far have read (each scan reads only what is new). */
  scannedRuns: number;
  scannedArgvFiles: number;
  total: ScanResult;
  /** Whether this process's runs are scanned (the root hook is loaded: scanThisProcess). */
  scanned?: boolean;
}

// One state per process even if this module were loaded twice (e.g. from out/ and a --require path).
const KEY = Symbol.for('cosign-gc-guard.test.secrets');
const g = globalThis as unknown as Record<symbol, State | undefined>;
const state: State =
  g[KEY] ??
  (g[KEY] = {
    secrets: new Set(KNOWN_SECRETS),
    runs: [],
    argvFiles: new Set(),
    counters: {},
    scannedRuns: 0,
    scannedArgvFiles: 0,
    total: { runs: 0, lines: 0, argvLines: 0, secrets: 0, leaks: [] },
  });

/** Called by the root hook plugin: this process's task runs are scanned after each test file. */
export function scanThisProcess(): void {
  state.scanned = true;
}

export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string') return;
  const v = value.trim();
  if (v.length >= MIN_SECRET_LENGTH) state.secrets.add(v);
}

export function registeredSecrets(): string[] {
  return [...state.secrets];
}

/** Env variables whose values are secrets, as the agent passes them to a task. */
const SECRET_ENV = [
  /^ENDPOINT_AUTH_PARAMETER_.+_(APITOKEN|PASSWORD|ACCESSTOKEN|TOKEN)$/i,
  /^INPUT_KEYPASSWORD$/i,
  /^DIGITALOCEAN_ACCESS_TOKEN$/i,
  /^SYSTEM_ACCESSTOKEN$/i,
  /^SECRET_/i,
];

/** Registers every secret found in a task's environment (also inside ENDPOINT_AUTH_<id> JSON). */
export function registerSecretsFromEnv(env: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (SECRET_ENV.some((re) => re.test(k))) registerSecret(v);
    if (/^ENDPOINT_AUTH_[^_]/i.test(k) && !/^ENDPOINT_AUTH_(PARAMETER|SCHEME)_/i.test(k)) {
      try {
        const params = (JSON.parse(v) as { parameters?: Record<string, unknown> }).parameters ?? {};
        for (const [p, pv] of Object.entries(params)) if (/token|password/i.test(p) && typeof pv === 'string') registerSecret(pv);
      } catch {
        /* not JSON: nothing to register */
      }
    }
  }
}

export function recordRun(run: RecordedRun): void {
  state.runs.push(run);
}

/** A file a wrapper script appends its argv to; scanned at the end like output. */
export function registerArgvFile(file: string): void {
  state.argvFiles.add(file);
}

/** Named counters for the totals line (malformed inputs, faults, cancellations). */
export function count(name: string, by = 1): void {
  state.counters[name] = (state.counters[name] ?? 0) + by;
}

export function counters(): Record<string, number> {
  return { ...state.counters };
}

export interface Leak {
  where: string;
  line: string;
  secret: string;
}

export interface ScanResult {
  runs: number;
  lines: number;
  argvLines: number;
  secrets: number;
  leaks: Leak[];
}

function mask(secret: string): string {
  return `${secret.slice(0, 3)}…(${secret.length} chars)`;
}

function scanText(text: string, where: string, secrets: string[], leaks: Leak[]): number {
  let n = 0;
  for (const raw of text.split(/\r?\n/)) {
    if (raw === '') continue;
    n++;
    // `##vso[task.setsecret]` is the one command whose job is to carry a secret (to the agent's masker).
    if (isCommand(raw, 'task.setsecret')) continue;
    // The ##vso escaping could split a value (%0A, %3B): look at the unescaped line too.
    const line = unescapeAll(raw);
    for (const s of secrets) {
      if (raw.includes(s) || line.includes(s)) leaks.push({ where, line: raw.split(s).join('<SECRET>').slice(0, 200), secret: mask(s) });
    }
    for (const re of SECRET_PATTERNS) {
      const m = re.exec(line);
      if (m) leaks.push({ where, line: line.split(m[0]).join('<SECRET>').slice(0, 200), secret: mask(m[0]) });
    }
  }
  return n;
}

/** The leaks in one text (for tests of the scanner itself). */
export function leaksIn(text: string, secrets: string[] = registeredSecrets()): Leak[] {
  const leaks: Leak[] = [];
  scanText(text, 'text', secrets, leaks);
  return leaks;
}

/** Scans the runs and argv files recorded from index `fromRun` / `fromArgv` on. */
function scanFrom(fromRun: number, fromArgv: number): ScanResult {
  const secrets = registeredSecrets();
  const leaks: Leak[] = [];
  let lines = 0;
  let argvLines = 0;
  state.runs.slice(fromRun).forEach((r, k) => {
    const i = fromRun + k;
    lines += scanText(r.stdout, `run ${i + 1} (${r.task}) stdout`, secrets, leaks);
    lines += scanText(r.stderr, `run ${i + 1} (${r.task}) stderr`, secrets, leaks);
    scanText(r.argv.join(' '), `run ${i + 1} (${r.task}) argv`, secrets, leaks);
  });
  for (const f of [...state.argvFiles].slice(fromArgv)) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue; // never written: the wrapper never ran
    }
    argvLines += scanText(text, `child argv ${f}`, secrets, leaks);
  }
  return { runs: state.runs.length - fromRun, lines, argvLines, secrets: secrets.length, leaks };
}

/** Scans everything recorded so far (not cached). */
export function scanNow(): ScanResult {
  return scanFrom(0, 0);
}

/**
 * Scans what was recorded since the last call and adds it to the totals. Run serially, the last
 * call comes after every file; in parallel mode each worker calls it after each of its files.
 */
export function finalScan(): ScanResult {
  const fresh = scanFrom(state.scannedRuns, state.scannedArgvFiles);
  state.scannedRuns = state.runs.length;
  state.scannedArgvFiles = state.argvFiles.size;
  const t = state.total;
  state.total = {
    runs: t.runs + fresh.runs,
    lines: t.lines + fresh.lines,
    argvLines: t.argvLines + fresh.argvLines,
    secrets: fresh.secrets,
    leaks: [...t.leaks, ...fresh.leaks],
  };
  return fresh;
}

/**
 * Where each test process leaves its totals for the reporter: run serially there is one process,
 * in parallel mode one per worker, and the reporter sums them into one line each when the run ends.
 */
export const TOTALS_DIR = path.resolve(__dirname, '..', '..', 'test-totals');

/**
 * Notes, apart from the scan, that a task run started: the reporter holds the runs the scans read
 * against the runs the suite made, so a scan that missed some (a worker whose scan never ran) fails.
 */
export function noteStartedRun(task: string): void {
  // Only in a process whose runs the scan reads (a test process, which loads the root hook); a
  // child that runs tasks itself (the demo) has no scan of its own to hold against.
  if (!state.scanned) return;
  fs.mkdirSync(TOTALS_DIR, { recursive: true });
  fs.appendFileSync(path.join(TOTALS_DIR, `started-${process.pid}.log`), `${task}\n`);
}

export function writeTotals(kind: string, data: unknown): void {
  fs.mkdirSync(TOTALS_DIR, { recursive: true });
  fs.writeFileSync(path.join(TOTALS_DIR, `${kind}-${process.pid}.json`), JSON.stringify(data));
}

/** One process's scan totals: counts, and the sha256 of each secret (never the secret) for a union. */
export interface ScanTotals {
  counters: Record<string, number>;
  runs: number;
  lines: number;
  argvLines: number;
  secretHashes: string[];
  leaks: number;
}

function writeScanTotals(): void {
  const t = state.total;
  const secretHashes = registeredSecrets().map((s) => crypto.createHash('sha256').update(s).digest('hex'));
  const totals: ScanTotals = { counters: state.counters, runs: t.runs, lines: t.lines, argvLines: t.argvLines, secretHashes, leaks: t.leaks.length };
  writeTotals('reliability', totals);
}

/** The reliability line over every process's totals. */
export function reliabilityLine(all: ScanTotals[]): string {
  const c: Record<string, number> = {};
  for (const t of all) for (const [k, v] of Object.entries(t.counters)) c[k] = (c[k] ?? 0) + v;
  const sum = (f: (t: ScanTotals) => number) => all.reduce((a, t) => a + f(t), 0);
  const secrets = new Set(all.flatMap((t) => t.secretHashes)).size;
  return (
    `reliability: ${c['malformed'] ?? 0} malformed inputs, ${c['faults'] ?? 0} faults (${c['faults-recovered'] ?? 0} recovered, ${c['faults-failed'] ?? 0} failed in one line), ${c['cancellations'] ?? 0} cancellations, ` +
    `${sum((t) => t.lines)} output lines of ${sum((t) => t.runs)} task runs and ${sum((t) => t.argvLines)} child argv lines scanned for ${secrets} secrets, ${sum((t) => t.leaks)} secrets found`
  );
}

export function totalsLine(r: ScanResult): string {
  const c = state.counters;
  return (
    `reliability: ${c['malformed'] ?? 0} malformed inputs, ${c['faults'] ?? 0} faults (${c['faults-recovered'] ?? 0} recovered, ${c['faults-failed'] ?? 0} failed in one line), ${c['cancellations'] ?? 0} cancellations, ` +
    `${r.lines} output lines of ${r.runs} task runs and ${r.argvLines} child argv lines scanned for ${r.secrets} secrets, ${r.leaks.length} secrets found`
  );
}

export function leakReport(r: ScanResult): string {
  return r.leaks
    .slice(0, 20)
    .map((l) => `  ${l.where}: ${l.secret}: ${l.line}`)
    .join('\n');
}

/**
 * The end-of-file check: scans what is new, records this process's totals for the reporter, and
 * throws (printing the totals) when anything new leaked. Called by the root hook plugin and by the
 * reliability suite's root `after`: the second call finds nothing new.
 */
export function assertNoLeaks(print: (line: string) => void = (l) => console.log(l)): void {
  // The suite-wide line is printed by the reporter (test/reporter.js) from every process's totals.
  const fresh = finalScan();
  writeScanTotals();
  if (fresh.leaks.length > 0) {
    print(totalsLine(state.total));
    throw new Error(`secret scan: ${fresh.leaks.length} secret value(s) found in task output or child argv:\n${leakReport(fresh)}`);
  }
}

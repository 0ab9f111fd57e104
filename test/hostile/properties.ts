// The hostile suite's one property check, its scheduler and its totals line.
//
// Every case runs a BUNDLED task against a hostile server of ours and then asserts the same
// properties (the trust boundary: what the tasks read is data, capped, checked and printed only through the output layer):
//   no command from data, no secret, bounded time, one line, fail closed (result + output
//   grammar), nothing left behind (and, for bad references, no network and no child).
// Run: `node scripts/build.js && npx mocha out/test/hostile/*.test.js` (one table: name its file).
// Every case's outcome is also written to out/test/hostile/summary.json.
// Cases of every table are registered while mocha loads the files and all start from the first
// table's `before` (a small pool for the CPU-bound ones, idle waits outside it), so the suite's wall
// time is close to its longest case.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { TaskRun, describeRun } from '../harness/run-task';
import { taskJson } from '../harness/paths';
import { registerSecret, writeTotals } from '../harness/secrets';
import { commandName, isCommand, outputLines, parseLine, property, unescapeAll } from '../harness/vso';

export type Surface = 'DO API' | 'registry' | 'timeline' | 'mirror' | 'cosign output' | 'Azure DevOps OIDC' | 'Entra ID' | 'Key Vault';
export const SURFACES: Surface[] = ['DO API', 'registry', 'timeline', 'mirror', 'cosign output', 'Azure DevOps OIDC', 'Entra ID', 'Key Vault'];
export type AttackClass = 'commands' | 'secrets' | 'size' | 'time' | 'content-type' | 'redirects' | 'cache' | 'references';
export const CLASSES: AttackClass[] = ['commands', 'secrets', 'size', 'time', 'content-type', 'redirects', 'cache', 'references'];

/** Slack on every time budget (a loaded 2-core machine). */
export const SLACK_S = 10;

export interface Expect {
  task: string;
  /** Every secret the case handed to the task or its server issued (registered for the suite scan too). */
  secrets: string[];
  /** The budget the case gave the task (its timeout inputs), in seconds. */
  budgetS: number;
  /** 'Failed' (default), 'notSucceeded', or 'any' (the result is free; the other properties still hold). */
  result?: 'Failed' | 'notSucceeded' | 'any';
  /** The agent's temp folder (checked for leftovers). */
  agentTemp?: string;
  /** Requests the case's servers received when none were allowed (references): must be 0. */
  networkRequests?: () => number;
  /** Calls of a cosign stand-in when none were allowed. */
  childCalls?: () => number;
  /** Additional case-specific checks, each returning a violation or undefined. */
  extra?: Array<(run: TaskRun) => string | undefined>;
}

const ALLOWED = new Set([
  'task.debug',
  'task.setvariable',
  'task.complete',
  'task.issue',
  'task.logissue',
  'task.setprogress',
  'task.uploadsummary',
  'task.prependpath',
  'task.setsecret',
]);
const BREAKS = /[\r\n\u2028\u2029\u0085]/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const DIGITS = /^\d+$/;
const BOOL = /^(true|false)$/;
const STATUS = /^[A-Za-z][A-Za-z ]*$/;
const WORD = /^[a-z][a-z-]*$/;
const PINNED = /^[a-z0-9.:-]+(\/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$/;
const MEDIA = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const list = (ok: (x: string) => boolean) => (v: string) => v.split(',').every(ok);
const opt = (re: RegExp | ((v: string) => boolean)) => (v: string) => v === '' || (typeof re === 'function' ? re(v) : re.test(v));

/** The grammar of every output variable a server's data can reach. */
const GRAMMAR: Record<string, (v: string) => boolean> = {
  gcUuid: opt(UUID),
  gcStatus: opt(STATUS),
  gcObservedStatus: opt(STATUS),
  gcType: opt(WORD),
  gcAction: opt(WORD),
  gcStartedAt: opt(RFC3339),
  gcFinishedAt: opt(RFC3339),
  gcDurationSeconds: opt(DIGITS),
  gcBlobsDeleted: opt(DIGITS),
  gcFreedBytes: opt(DIGITS),
  gcWaitSeconds: opt(DIGITS),
  stageWaitSeconds: opt(DIGITS),
  attempts: opt(DIGITS),
  durationSeconds: opt(DIGITS),
  gcWasActive: (v) => BOOL.test(v),
  skipped: (v) => BOOL.test(v),
  cacheHit: (v) => BOOL.test(v),
  digests: opt(list((x) => PINNED.test(x))),
  digest: opt(PINNED),
  // 'unresolved' (resolveDigest false) and 'unknown' are the task's own words, not server data.
  mediaTypes: opt(list((x) => x === 'unresolved' || x === 'unknown' || MEDIA.test(x))),
  cosignSha256: (v) => /^[0-9a-f]{64}$/.test(v),
  publicKey: (v) => /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/.test(v),
  cosignVersion: (v) => /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(v),
  // eslint-disable-next-line no-control-regex -- a control character in a path is the finding
  cosignPath: (v) => v.startsWith('/') && !/[\x00-\x1f\x7f\u2028\u2029\u0085]|##/.test(v),
};

const outputCache = new Map<string, Set<string>>();
function declaredOutputs(task: string): Set<string> {
  let s = outputCache.get(task);
  if (!s) {
    const j = JSON.parse(fs.readFileSync(taskJson(task), 'utf8')) as { outputVariables?: Array<{ name: string }> };
    s = new Set((j.outputVariables ?? []).map((o) => o.name.toLowerCase()));
    outputCache.set(task, s);
  }
  return s;
}

const cut = (s: string) => JSON.stringify(s.length > 160 ? s.slice(0, 160) + '…' : s);

/** No command from data: where `##vso[` and `##[` may appear, which commands, which variables. */
function commandViolations(run: TaskRun, task: string): string[] {
  const out: string[] = [];
  const outputs = declaredOutputs(task);
  for (const line of outputLines(run.stdout)) {
    if (line.indexOf('##vso[', 1) >= 0) out.push(`commands: '##vso[' inside a stdout line: ${cut(line)}`);
    if (/^\s*##\[/.test(line)) out.push(`commands: a stdout line starts with '##[': ${cut(line)}`);
    const name = commandName(line);
    if (name === undefined) continue;
    const cmd = name.toLowerCase();
    if (!ALLOWED.has(cmd)) out.push(`commands: agent command '${cmd}' printed: ${cut(line)}`);
    if (cmd === 'task.setvariable') {
      const parsed = parseLine(line);
      const v = (parsed && property(parsed, 'variable')) ?? '';
      if (!outputs.has(v.toLowerCase())) out.push(`commands: setvariable of '${v}', not an output of ${task}: ${cut(line)}`);
    }
  }
  for (const line of outputLines(run.stderr)) {
    if (line.includes('##vso[')) out.push(`commands: '##vso[' in stderr: ${cut(line)}`);
    if (/^\s*##\[/.test(line)) out.push(`commands: a stderr line starts with '##[': ${cut(line)}`);
  }
  return out;
}

/** No secret outside `##vso[task.setsecret]` lines (raw and unescaped). */
function secretViolations(run: TaskRun, secrets: string[]): string[] {
  const out: string[] = [];
  const wanted = secrets.filter((s) => s && s.length >= 6);
  for (const [where, text] of [
    ['stdout', run.stdout],
    ['stderr', run.stderr],
  ] as const) {
    for (const line of outputLines(text)) {
      if (isCommand(line, 'task.setsecret')) continue;
      const plain = unescapeAll(line);
      for (const s of wanted) {
        if (line.includes(s) || plain.includes(s))
          out.push(`secrets: a secret (${s.slice(0, 4)}…, ${s.length} chars) in ${where}: ${cut(line.split(s).join('<SECRET>'))}`);
      }
    }
  }
  return out;
}

/**
 * The last task.complete, read from the lines exactly as printed (not trimmed, so that no break at
 * the end of its message is lost): its result and its unescaped message.
 */
export function completion(stdout: string): { result?: string; message: string } {
  const done = outputLines(stdout)
    .map(parseLine)
    .filter((c) => c?.command === 'task.complete')
    .pop();
  return done ? { result: done.properties['result'], message: done.message } : { message: '' };
}

function resultViolations(run: TaskRun, ex: Expect): string[] {
  const out: string[] = [];
  const done = completion(run.stdout);
  run = { ...run, result: done.result, resultMessage: done.message };
  const want = ex.result ?? 'Failed';
  if (want === 'Failed' && run.result !== 'Failed') out.push(`fail closed: result ${run.result ?? '(none)'}, expected Failed`);
  if (want === 'notSucceeded' && (run.result === 'Succeeded' || run.result === 'SucceededWithIssues' || run.result === undefined)) {
    out.push(`fail closed: result ${run.result ?? '(none)'}, expected neither Succeeded nor none`);
  }
  if (want === 'any' && run.result === undefined) out.push('fail closed: no task.complete at all');
  if (BREAKS.test(run.resultMessage)) out.push(`one line: the task.complete message has a line break: ${cut(run.resultMessage)}`);
  for (const [name, value] of Object.entries(run.outputs)) {
    const g = GRAMMAR[name];
    if (g && !g(value)) out.push(`fail closed: output ${name} breaks its grammar: ${cut(value)}`);
  }
  return out;
}

function leftovers(dir: string | undefined): string[] {
  if (!dir || !fs.existsSync(dir)) return [];
  // task-lib's own key files (.taskkey for its vault; proxy and cert for the AES keys of the proxy and
  // client-certificate passwords it keeps encrypted in memory) hold random keys, never a secret.
  return fs.readdirSync(dir).filter((e) => !['.taskkey', 'proxy', 'cert'].includes(e) && !e.endsWith('.md'));
}

/** Every violated property of one run (empty = the case holds). */
export function violations(run: TaskRun, ex: Expect): string[] {
  const out = [...commandViolations(run, ex.task), ...secretViolations(run, ex.secrets), ...resultViolations(run, ex)];
  const limitMs = (ex.budgetS + SLACK_S) * 1000;
  if (run.durationMs > limitMs || run.signal)
    out.push(`bounded time: ran ${(run.durationMs / 1000).toFixed(1)} s${run.signal ? ` (killed, ${run.signal})` : ''}, budget ${ex.budgetS} s + ${SLACK_S} s`);
  const left = leftovers(ex.agentTemp);
  if (left.length) out.push(`nothing left behind: AGENT_TEMPDIRECTORY holds ${left.join(', ')}`);
  const n = ex.networkRequests?.() ?? 0;
  if (n > 0) out.push(`references: ${n} network request(s) before the reference was refused`);
  const c = ex.childCalls?.() ?? 0;
  if (c > 0) out.push(`references: the child process ran ${c} time(s)`);
  if (ex.networkRequests && run.errors.length !== 1) out.push(`one line: ${run.errors.length} error issues, expected exactly one`);
  for (const f of ex.extra ?? []) {
    const v = f(run);
    if (v) out.push(v);
  }
  return out;
}

/** The kill time runTask is given: the budget, the slack, 5 s to notice. */
export function killAfterMs(budgetS: number): number {
  return (budgetS + SLACK_S + 5) * 1000;
}

export function secrets(...values: string[]): string[] {
  for (const v of values) registerSecret(v);
  return values;
}

// ---------------------------------------------------------------- scheduling and totals

export interface CaseOutcome {
  run: TaskRun;
  expect: Expect;
}

export interface HostileCase {
  name: string;
  classes: AttackClass[];
  /** An idle wait (stall, trickle, timeouts): runs outside the CPU pool. */
  idle?: boolean;
  exec: () => Promise<CaseOutcome>;
}

interface Entry {
  surface: Surface;
  c: HostileCase;
  promise?: Promise<CaseOutcome>;
  start?: () => void;
  started?: boolean;
  outcome?: { durationMs: number; budgetS: number; passed: boolean; violations: string[]; result?: string };
}

const KEY = Symbol.for('cosign-gc-guard.test.hostile');
const g = globalThis as unknown as Record<symbol, { entries: Entry[]; queue: Entry[]; running: number } | undefined>;
const state = g[KEY] ?? (g[KEY] = { entries: [], queue: [], running: 0 });
const POOL = 6;

function pump(): void {
  while (state.running < POOL && state.queue.length) {
    const e = state.queue.shift()!;
    state.running++;
    e.start!();
    const done = () => {
      state.running--;
      pump();
    };
    e.promise!.then(done, done);
  }
}

/**
 * Starts every registered case not started yet: idle waits at once, the rest through the CPU pool.
 * Run serially, mocha loads every table first, so all start together; in parallel mode a worker
 * loads tables one after another, and each starts its own.
 */
function startAll(): void {
  for (const e of state.entries) {
    if (e.started) continue;
    e.started = true;
    if (e.c.idle) e.start!();
    else state.queue.push(e);
  }
  pump();
}

function register(surface: Surface, c: HostileCase): Entry {
  const e: Entry = { surface, c };
  e.promise = new Promise<CaseOutcome>((resolve, reject) => {
    e.start = () => c.exec().then(resolve, reject);
  });
  e.promise.catch(() => undefined);
  state.entries.push(e);
  return e;
}

function judge(e: Entry, o: CaseOutcome): void {
  const v = violations(o.run, o.expect);
  e.outcome = { durationMs: o.run.durationMs, budgetS: o.expect.budgetS, passed: v.length === 0, violations: v, result: completion(o.run.stdout).result };
}

let tablesOpen = 0;

/** After the last table: the totals line and out/test/hostile/summary.json (every case, for reports). */
async function finishTable(): Promise<void> {
  if (--tablesOpen > 0) return;
  await Promise.allSettled(state.entries.map((e) => e.promise));
  const rows: HostileRow[] = state.entries.map((e) => ({ surface: e.surface, name: e.c.name, classes: e.c.classes, ...e.outcome }));
  // The reporter prints the line over every test process's rows when the run ends.
  writeTotals('hostile', rows);
  fs.writeFileSync(path.join(__dirname, `summary-${process.pid}.json`), JSON.stringify(rows, null, 1));
}

/** One table: one `it` per case; all cases of all tables start together from the first table's `before`. */
export function table(surface: Surface, cases: HostileCase[]): void {
  tablesOpen++;
  describe(`hostile ${surface}: ${cases.length} cases`, function () {
    this.timeout(180_000);
    // The first hostile table to run starts every hostile case (not a root hook: other suites of
    // `npm test` must not share the machine with them).
    before(() => startAll());
    after(async function () {
      this.timeout(180_000);
      await finishTable();
    });
    for (const c of cases) {
      const e = register(surface, c);
      e.promise!.then(
        (o) => judge(e, o),
        () => undefined,
      );
      it(`[${c.classes.join(', ')}] ${c.name}`, async () => {
        const o = await e.promise!;
        if (!e.outcome) judge(e, o);
        const v = e.outcome!.violations;
        assert.ok(
          v.length === 0,
          `${v.length} propert${v.length === 1 ? 'y' : 'ies'} violated:\n  ${v.slice(0, 8).join('\n  ')}\n${describeRun(o.run).slice(0, 4000)}`,
        );
      });
    }
  });
}

/** One case's result, as written for the suite-wide totals line. */
export interface HostileRow {
  surface: Surface;
  name: string;
  classes: AttackClass[];
  durationMs?: number;
  budgetS?: number;
  passed?: boolean;
}

/** The totals line over every hostile case of the run (all test processes). */
export function hostileTotalsLine(rows: HostileRow[]): string {
  const per = SURFACES.map((s) => `${s} ${rows.filter((e) => e.surface === s).length}`).join(', ');
  const cls = CLASSES.map((k) => `${k} ${rows.filter((e) => e.classes.includes(k)).length}`).join(', ');
  const done = rows.filter((e) => e.durationMs !== undefined);
  const longest = done.reduce<HostileRow | undefined>((a, e) => (!a || e.durationMs! > a.durationMs! ? e : a), undefined);
  const surfaces = new Set(rows.map((e) => e.surface)).size;
  const failed = done.filter((e) => !e.passed).length;
  return (
    `hostile: ${surfaces} surfaces, ${rows.length} cases (${per}), classes: ${cls}; ` +
    `longest run ${longest ? (longest.durationMs! / 1000).toFixed(1) : 0} s vs budget ${longest?.budgetS ?? 0} s; ${failed} of ${done.length} cases failing`
  );
}

// The task entry wrapper: the output guard first, then the task's code; one result, cleanups on every
// exit path, cancellation as a signal. Everything it prints goes through the output layer.
import { CancelledError, UserError, errorMessage } from './errors';
import { Logger, OutputTable, debug, info, installOutputGuard, logger, prependPath, setOutput, setResult, uploadSummary, warn } from './output';
// Types only (erased): settings.ts loads task-lib, so runTask requires it after the guard is in place.
import type { readSettings as readSettingsType } from './settings';

/** Seconds as "1m 05s" for humans. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  const rest = s % 60;
  if (m < 60) return `${m}m ${String(rest).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

type Cleanup = () => void;
const cleanups: Cleanup[] = [];

/** Registers work that must run on every exit path (temp credentials, child processes). */
export function onExit(cleanup: Cleanup): () => void {
  cleanups.push(cleanup);
  return () => {
    const i = cleanups.indexOf(cleanup);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

function runCleanups(): void {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try {
      c();
    } catch (e) {
      // A cleanup that failed left something behind (credentials, a CA bundle): the user must know.
      warn(`Cleanup failed, something may be left behind: ${errorMessage(e)}`);
    }
  }
}

/** What runTask hands the task's code: the job's signal, the one logger, the settings reader, and `publish`. */
export interface TaskContext {
  signal: AbortSignal;
  log: Logger;
  readSettings: typeof readSettingsType;
  /**
   * Sets now the outputs of `table` that `partial` already tells (digests as soon as images resolve):
   * a later failure still reports them. Each output is set once, the first time its value is known.
   */
  publish<R>(table: OutputTable<R>, partial: R): void;
}

/** One line printed after the outputs and the summary. */
export interface ClosingLine {
  level: 'info' | 'warn';
  text: string;
}

/**
 * What a task's workflow returns, on success and on a failure it can still report: the outputs'
 * table and the result it reads them from, a folder for PATH, the build summary, the closing lines;
 * then the task's end: `failure` (thrown after the report), or succeeded (with issues) and a message.
 */
export interface TaskRun<R> {
  outputs: OutputTable<R>;
  result: R;
  prependPath?: string;
  summary?: { name: string; markdown: string };
  closing?: readonly ClosingLine[];
  failure?: unknown;
  withIssues?: boolean;
  message?: string;
}

/** Sets each output of `table` whose value `result` tells and that is not set yet. */
function setOutputs<R>(table: OutputTable<R>, result: R, set: Set<string>): void {
  for (const [name, decl] of Object.entries(table)) {
    if (set.has(name)) continue;
    const value = decl.value(result);
    if (value === undefined) continue;
    setOutput(name, value, decl);
    set.add(name);
  }
}

/** The run's report, in this order: PATH, outputs, summary, closing lines; then its failure, if any. */
function report<R>(run: TaskRun<R>, set: Set<string>): void {
  // First on PATH, even when another tool of the name is there: later steps run the one this task chose.
  if (run.prependPath) prependPath(run.prependPath);
  setOutputs(run.outputs, run.result, set);
  if (run.summary) uploadSummary(run.summary.name, run.summary.markdown);
  for (const line of run.closing ?? []) (line.level === 'warn' ? warn : info)(line.text);
  if (run.failure !== undefined) throw run.failure;
}

/**
 * The one way a task runs. First it guards the output streams; only then does it load the task's
 * code (`load`, a require of the task's workflow module, and the settings reader with task-lib behind
 * it), so nothing the task imports can print before the guard, whatever the import order: an entry
 * file imports this module alone. `main` reads the settings, calls one workflow and returns its
 * TaskRun, which runTask reports. The AbortSignal fires when the agent cancels the job (SIGINT, then
 * SIGTERM); every exit path (success, failure, cancellation) runs the registered cleanups and sets
 * exactly one result. User errors are one line; unexpected ones add a stack to the debug log only.
 */
export async function runTask<M, R>(load: () => M, main: (workflow: M, context: TaskContext) => Promise<TaskRun<R>>): Promise<void> {
  installOutputGuard();
  const controller = new AbortController();
  let cancelled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (cancelled) {
      // The agent's second signal: stop now, but still leave nothing behind and report.
      runCleanups();
      setResult('Cancelled', 'The job was cancelled.');
      process.exit(1);
    }
    cancelled = true;
    info(`Received ${sig}: cancelling.`);
    controller.abort(new CancelledError());
    // If the work does not unwind in time, still clean up and report.
    setTimeout(() => {
      runCleanups();
      setResult('Cancelled', 'The job was cancelled.');
      process.exit(1);
    }, 3000).unref();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  process.on('exit', runCleanups);
  try {
    const set = new Set<string>();
    // Required when the task reads its settings: after the guard, and only by a task that reads them.
    const readSettings = ((table) => (require('./settings') as typeof import('./settings')).readSettings(table)) as typeof readSettingsType;
    const context: TaskContext = { signal: controller.signal, log: logger, readSettings, publish: (table, partial) => setOutputs(table, partial, set) };
    const run = await main(load(), context);
    report(run, set);
    if (cancelled) throw new CancelledError();
    setResult(run.withIssues ? 'SucceededWithIssues' : 'Succeeded', run.message ?? 'done');
  } catch (err) {
    if (cancelled || err instanceof CancelledError) {
      setResult('Cancelled', 'The job was cancelled.');
    } else if (err instanceof UserError) {
      setResult('Failed', err.message);
    } else {
      if (err instanceof Error && err.stack) debug(err.stack);
      setResult('Failed', errorMessage(err));
    }
  } finally {
    runCleanups();
    for (const s of signals) process.removeListener(s, onSignal);
  }
}

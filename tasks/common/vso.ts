import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tl from 'azure-pipelines-task-lib/task';
import { CancelledError, UserError, errorMessage } from './errors';

/** Output variables are always set with isOutput=true (contract). */
export function setOutput(name: string, value: string | number | boolean): void {
  tl.setVariable(name, String(value), false, true);
}

export function info(message: string): void {
  console.log(message);
}

export function debug(message: string): void {
  tl.debug(message);
}

export function warn(message: string): void {
  tl.logIssue(tl.IssueType.Warning, message);
}

export function progress(percent: number, text: string): void {
  tl.setProgress(Math.max(0, Math.min(100, Math.round(percent))), text);
}

/** Writes Markdown into the agent's temp folder and attaches it to the run's summary. */
export function uploadSummary(fileStem: string, markdown: string): string {
  const dir = process.env['AGENT_TEMPDIRECTORY'] || os.tmpdir();
  const file = path.join(dir, `${fileStem}-${process.pid}-${Date.now()}.md`);
  fs.writeFileSync(file, markdown);
  tl.uploadSummary(file);
  return file;
}

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
      tl.debug(`cleanup failed: ${errorMessage(e)}`);
    }
  }
}

/**
 * The one way a task's entry point runs: it gets an AbortSignal that fires
 * when the agent cancels the job (SIGINT, then SIGTERM), and every exit path
 * (success, failure, cancellation) runs the registered cleanups and sets
 * exactly one result. User errors are one line; unexpected ones add a stack
 * to the debug log only.
 */
export interface TaskOutcome {
  withIssues?: boolean;
  message?: string;
}

export async function runTask(main: (signal: AbortSignal) => Promise<TaskOutcome | void>): Promise<void> {
  const controller = new AbortController();
  let cancelled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (cancelled) {
      // The agent's second signal: stop now, but still leave nothing behind and report.
      runCleanups();
      tl.setResult(tl.TaskResult.Cancelled, 'The job was cancelled.');
      process.exit(1);
    }
    cancelled = true;
    info(`Received ${sig}: cancelling.`);
    controller.abort(new CancelledError());
    // If the work does not unwind in time, still clean up and report.
    setTimeout(() => {
      runCleanups();
      tl.setResult(tl.TaskResult.Cancelled, 'The job was cancelled.');
      process.exit(1);
    }, 3000).unref();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  process.on('exit', runCleanups);
  try {
    const outcome = (await main(controller.signal)) || {};
    if (cancelled) throw new CancelledError();
    tl.setResult(
      outcome.withIssues ? tl.TaskResult.SucceededWithIssues : tl.TaskResult.Succeeded,
      outcome.message ?? 'done',
    );
  } catch (err) {
    if (cancelled || err instanceof CancelledError) {
      tl.setResult(tl.TaskResult.Cancelled, 'The job was cancelled.');
    } else if (err instanceof UserError) {
      tl.setResult(tl.TaskResult.Failed, err.message);
    } else {
      if (err instanceof Error && err.stack) tl.debug(err.stack);
      tl.setResult(tl.TaskResult.Failed, errorMessage(err));
    }
  } finally {
    runCleanups();
    for (const s of signals) process.removeListener(s, onSignal);
  }
}

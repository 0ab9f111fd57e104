// The task entry wrapper: one result, cleanups on every exit path, cancellation as a signal.
// Everything it prints goes through the output layer.
import { CancelledError, UserError, errorMessage } from './errors';
import { debug, info, setResult, warn } from './output';

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
    const outcome = (await main(controller.signal)) || {};
    if (cancelled) throw new CancelledError();
    setResult(outcome.withIssues ? 'SucceededWithIssues' : 'Succeeded', outcome.message ?? 'done');
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

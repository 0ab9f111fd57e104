// Child processes: one runner for every program the tasks start (cosign and
// its probes, the installer's version check), so cancellation, deadlines and
// cleanup behave the same everywhere.
import { spawn } from 'child_process';
import { CancelledError, UserError } from './errors';
import { onExit } from './vso';

export interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

/** Variables never handed to a child: task inputs, service connection secrets, tokens. */
const SCRUBBED = /^(INPUT_|ENDPOINT_|SECRET_|SYSTEM_ACCESSTOKEN$|DIGITALOCEAN_ACCESS_TOKEN$|COSIGN_PASSWORD$|VSTS_|AZURE_DEVOPS_EXT_PAT$)/i;

export function childEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !SCRUBBED.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export interface ProcessOptions {
  env: Record<string, string>;
  /** Aborting kills the child (process group) and rejects with CancelledError when `cancelSignal` fired. */
  signal?: AbortSignal;
  /** The job's own signal: distinguishes cancellation from an attempt deadline. */
  cancelSignal?: AbortSignal;
  timeoutMs?: number;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

const MAX_CAPTURE = 1 << 20;

/**
 * Runs a program in its own process group. On abort or timeout the whole group
 * gets SIGTERM, then SIGKILL after a second; a process exit kills it at once.
 */
export function runProcess(file: string, args: string[], options: ProcessOptions): Promise<ProcessOutcome> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (options.cancelSignal?.aborted) return reject(new CancelledError());
    const child = spawn(file, args, {
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let aborted = false;
    let exited = false;
    const killGroup = (sig: NodeJS.Signals) => {
      if (exited || child.pid === undefined) return;
      try {
        if (process.platform !== 'win32') process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        try {
          child.kill(sig);
        } catch {
          /* gone */
        }
      }
    };
    const unregister = onExit(() => killGroup('SIGKILL'));
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), 1000);
      killTimer.unref();
    };
    const onAbort = () => {
      aborted = true;
      stop();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          stop();
        }, options.timeoutMs)
      : undefined;
    const lineSplitter = (stream: 'stdout' | 'stderr') => {
      let pending = '';
      return (d: Buffer) => {
        const s = d.toString();
        if (stream === 'stdout') {
          if (stdout.length < MAX_CAPTURE) stdout += s;
        } else if (stderr.length < MAX_CAPTURE) stderr += s;
        if (!options.onLine) return;
        pending += s;
        const lines = pending.split(/\r?\n/);
        pending = lines.pop() ?? '';
        for (const l of lines) options.onLine(l, stream);
      };
    };
    child.stdout!.on('data', lineSplitter('stdout'));
    child.stderr!.on('data', lineSplitter('stderr'));
    child.on('error', (err) => {
      exited = true;
      cleanup();
      reject(new UserError(`could not start ${file}: ${err.message}`));
    });
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      unregister();
    };
    child.on('close', (code, sig) => {
      exited = true;
      // Whatever the wrapper left in the group goes too.
      if (child.pid !== undefined && process.platform !== 'win32') {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* group already empty */
        }
      }
      cleanup();
      if (options.cancelSignal?.aborted) return reject(new CancelledError());
      if (aborted && !options.cancelSignal) return reject(new CancelledError());
      resolve({ code, signal: sig, stdout, stderr, timedOut: timedOut || (aborted && !options.cancelSignal?.aborted), durationMs: Date.now() - started });
    });
  });
}

// Child processes: one runner for every program the tasks start (cosign and
// its probes, the installer's version check), so cancellation, deadlines and
// cleanup behave the same everywhere.
import { ChildProcess, spawn } from 'child_process';
import { CancelledError, UserError } from './errors';
import { ChildNetwork, agentChildNetwork } from './network';
import { onExit } from './task';

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

/**
 * A child's environment: `base` without the scrubbed variables, with the agent's proxy and CA as Go
 * reads them (network.ts: HTTPS_PROXY, HTTP_PROXY, NO_PROXY, SSL_CERT_FILE; the lower-case proxy
 * variables removed when the agent has a proxy), then `extra`.
 */
export function childEnv(
  base: Readonly<Record<string, string | undefined>>,
  extra: Record<string, string>,
  network: ChildNetwork = agentChildNetwork(),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !SCRUBBED.test(k) && !network.unset.includes(k)) env[k] = v;
  return { ...env, ...network.set, ...extra };
}

/**
 * A child's environment from this process's environment as it is now (task-lib has moved the
 * inputs and secrets out of it by then; childEnv scrubs what is left), with `extra`.
 */
export function childEnvironment(extra: Record<string, string>): Record<string, string> {
  return childEnv(process.env, extra);
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

/** What is kept of each stream for the outcome (cosign's error lines are at its end of a short run). */
const MAX_CAPTURE = 1 << 20;
/** A line longer than this is handed on in pieces: a child that never prints a newline cannot fill memory. */
const MAX_LINE = 64 * 1024;

/**
 * Signals a child's whole process group (it was spawned detached, so its group is its pid and
 * cosign's own children go too); on Windows, which has no process groups, the child itself. Quiet
 * when it is gone. The platform and `kill` are parameters so both paths are unit-tested anywhere.
 */
export function signalGroup(
  child: Pick<ChildProcess, 'pid' | 'kill'>,
  sig: NodeJS.Signals,
  platform: NodeJS.Platform = process.platform,
  kill: (pid: number, sig: NodeJS.Signals) => void = (pid, s) => void process.kill(pid, s),
): void {
  if (child.pid === undefined) return;
  try {
    if (platform !== 'win32') kill(-child.pid, sig);
    else child.kill(sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      /* gone */
    }
  }
}

/** Collects one stream (capped) and hands complete lines (each at most MAX_LINE) to onLine. */
function streamCollector(stream: 'stdout' | 'stderr', onLine?: ProcessOptions['onLine']) {
  let text = '';
  let pending = '';
  return {
    text: () => text,
    add(d: Buffer): void {
      const s = d.toString();
      if (text.length < MAX_CAPTURE) text += s;
      if (!onLine) return;
      pending += s;
      const lines = pending.split(/\r?\n/);
      pending = lines.pop() ?? '';
      while (pending.length > MAX_LINE) {
        lines.push(pending.slice(0, MAX_LINE));
        pending = pending.slice(MAX_LINE);
      }
      for (const l of lines) onLine(l, stream);
    },
  };
}

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
    const out = streamCollector('stdout', options.onLine);
    const err = streamCollector('stderr', options.onLine);
    let timedOut = false;
    let aborted = false;
    let exited = false;
    const killGroup = (sig: NodeJS.Signals) => {
      if (!exited) signalGroup(child, sig);
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
    child.stdout!.on('data', (d: Buffer) => out.add(d));
    child.stderr!.on('data', (d: Buffer) => err.add(d));
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      unregister();
    };
    child.on('error', (e) => {
      exited = true;
      cleanup();
      reject(new UserError(`could not start ${file}: ${e.message}`));
    });
    child.on('close', (code, sig) => {
      exited = true;
      // Whatever the wrapper left in the group goes too.
      if (process.platform !== 'win32') signalGroup(child, 'SIGKILL');
      cleanup();
      if (options.cancelSignal?.aborted) return reject(new CancelledError());
      if (aborted && !options.cancelSignal) return reject(new CancelledError());
      const stopped = timedOut || (aborted && !options.cancelSignal?.aborted);
      resolve({ code, signal: sig, stdout: out.text(), stderr: err.text(), timedOut: stopped, durationMs: Date.now() - started });
    });
  });
}

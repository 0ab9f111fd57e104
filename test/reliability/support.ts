// Shared by the reliability suite: agent/connection environments, recording cosign wrappers,
// the one-line-failure checks, process and temp-file checks.
import * as assert from 'assert';
import { ChildProcess } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Emulator } from '../harness/emulator';
import { tempDir } from '../harness/paths';
import { RunOptions, TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { registerArgvFile, registerSecret } from '../harness/secrets';
import { doEndpointEnv, timelineEnv } from '../harness/pipeline-env';

import { COSIGN_TASK, GC_TASK, INSTALLER_TASK, WAIT_TASK } from '../harness/paths';

export { COSIGN_TASK, GC_TASK, INSTALLER_TASK, WAIT_TASK };

export const DO_ID = 'rel-do';
export const REG_ID = 'rel-reg';

/** A DO API token unique to this suite (registered as a secret). */
export function suiteToken(): string {
  const t = `dop_v1_rel_${crypto.randomBytes(16).toString('hex')}`;
  registerSecret(t);
  return t;
}

export function doEnv(emu: Emulator, id = DO_ID): Record<string, string> {
  return doEndpointEnv(emu, id);
}

export { timelineEnv };

/** A dockerregistry service connection holding emulator-issued read-write credentials. */
export function registryConnEnv(emu: Emulator, id = REG_ID): { env: Record<string, string>; password: string } {
  const creds = emu.dockerCredentials({ readWrite: true });
  registerSecret(creds.password);
  const env = {
    [`ENDPOINT_URL_${id}`]: `http://${emu.registryHost}`,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme: 'UsernamePassword', parameters: { username: creds.username, password: creds.password } }),
    [`ENDPOINT_AUTH_PARAMETER_${id}_USERNAME`]: creds.username,
    [`ENDPOINT_AUTH_PARAMETER_${id}_PASSWORD`]: creds.password,
  };
  return { env, password: creds.password };
}

export interface Wrapper {
  path: string;
  /** argv of every call, one line each (registered for the secret scan). */
  argvFile: string;
  /** pids of the wrapper and of anything it started in the background. */
  pidFile: string;
  calls(): string[];
  pids(): number[];
}

/**
 * An executable bash script standing in for cosign: records "$@" and its pid, then runs `body`
 * (default: exec the real cosign given as `target`, or exit 1 when none).
 */
export function wrapper(name: string, target?: string, body?: string): Wrapper {
  const dir = tempDir('rel-wrap');
  const file = path.join(dir, name);
  const argvFile = path.join(dir, 'argv');
  const pidFile = path.join(dir, 'pids');
  const run = body ?? (target ? `exec "${target}" "$@"` : 'echo "recording wrapper: not a cosign" >&2; exit 1');
  fs.writeFileSync(file, `#!/usr/bin/env bash\necho "$@" >> "${argvFile}"\necho $$ >> "${pidFile}"\n${run}\n`, { mode: 0o755 });
  registerArgvFile(argvFile);
  const lines = (f: string) =>
    fs.existsSync(f)
      ? fs
          .readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
  return {
    path: file,
    argvFile,
    pidFile,
    calls: () => lines(argvFile),
    pids: () =>
      lines(pidFile)
        .map(Number)
        .filter((n) => n > 0),
  };
}

/** A PATH whose first entry holds a recording `cosign` (so a cosign from PATH is caught too). */
export function pathWithRecorder(w: Wrapper): string {
  const dir = tempDir('rel-path');
  fs.symlinkSync(w.path, path.join(dir, 'cosign'));
  return `${dir}${path.delimiter}${process.env.PATH ?? ''}`;
}

/** Alive and not a zombie (a reparented zombie is dead for our purposes). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Entries of the agent's temp folder the task left behind (task-lib's own .taskkey excepted). */
export function leftoverTemp(agent: Record<string, string>): string[] {
  const dir = agent.AGENT_TEMPDIRECTORY;
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((e) => e !== '.taskkey' && !/^(registry-gc|cosign)-\d+-\d+\.md$/.test(e));
}

/** Files under a folder containing a needle (a credential left on disk). */
export function filesContaining(root: string, needles: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          const st = fs.statSync(p);
          if (st.size > 4 << 20) continue;
          const text = fs.readFileSync(p, 'latin1');
          if (needles.some((n) => n && text.includes(n))) hits.push(p);
        } catch {
          /* vanished */
        }
      }
    }
  };
  walk(root);
  return hits;
}

const STACK = /^\s+at \S.*(\(|:\d+)|%0A\s+at /m;

/** No stack trace anywhere in the raw output (a debug line with an escaped stack counts too). */
export function assertNoStack(run: TaskRun): void {
  for (const [name, text] of [
    ['stdout', run.stdout],
    ['stderr', run.stderr],
  ] as const) {
    const m = STACK.exec(text) ?? / {4}at /.exec(text);
    assert.ok(!m, `a stack trace in ${name} ("${m?.[0].trim()}"):\n${describeRun(run)}`);
  }
}

/** Failed, with exactly one error issue, one line, naming `names` (a string or pattern). */
export function assertOneLineFailure(run: TaskRun, names: string | RegExp): void {
  assert.strictEqual(run.result, 'Failed', describeRun(run));
  assert.strictEqual(run.errors.length, 1, `exactly one error issue, got ${run.errors.length}:\n${describeRun(run)}`);
  const msg = run.resultMessage;
  assert.ok(msg.trim() !== '', `an empty failure message:\n${describeRun(run)}`);
  assert.ok(!/[\r\n]/.test(msg), `the failure message spans lines:\n${JSON.stringify(msg)}`);
  assert.ok(!/[\r\n]/.test(run.errors[0]), `the error issue spans lines:\n${JSON.stringify(run.errors[0])}`);
  if (typeof names === 'string') assert.ok(msg.includes(names), `the message does not name ${names}: ${msg}`);
  else assert.match(msg, names, `the message does not name what failed`);
  assertNoStack(run);
  assertOneResult(run);
}

/** Exactly one task.complete. */
export function assertOneResult(run: TaskRun): void {
  const completes = run.commands.filter((c) => c.command === 'task.complete');
  assert.strictEqual(completes.length, 1, `expected one task.complete, got ${completes.length}:\n${describeRun(run)}`);
}

export interface CancelOutcome {
  run: TaskRun;
  /** ms from SIGINT to the process closing. */
  afterSignalMs: number;
  sigtermSent: boolean;
  signalled: boolean;
}

/**
 * Runs a task and cancels it as the agent does once `ready(line)` is true (or `readyWhen()` polls
 * true): SIGINT, then SIGTERM after 2 s if the task is still there.
 */
export async function runAndCancel(
  task: string,
  options: RunOptions,
  ready: (line: string) => boolean,
  readyWhen: () => boolean = () => true,
): Promise<CancelOutcome> {
  let child: ChildProcess | undefined;
  let sentAt = 0;
  let sigtermSent = false;
  let triggered = false;
  const trigger = () => {
    if (triggered) return;
    triggered = true;
    const poll = setInterval(() => {
      if (!readyWhen() || !child) return;
      clearInterval(poll);
      sentAt = Date.now();
      child.kill('SIGINT');
      setTimeout(() => {
        if (child && child.exitCode === null && child.signalCode === null) {
          sigtermSent = true;
          child.kill('SIGTERM');
        }
      }, 2000).unref();
    }, 20);
  };
  const run = await runTask(task, {
    ...options,
    onSpawn: (c) => {
      child = c;
      options.onSpawn?.(c);
    },
    onLine: (l) => {
      options.onLine?.(l);
      if (ready(l)) trigger();
    },
  });
  return { run, afterSignalMs: sentAt ? Date.now() - sentAt : -1, sigtermSent, signalled: sentAt > 0 };
}

export { agentEnv, describeRun, runTask };
export type { TaskRun };

/** A limited-concurrency runner: rows start in order, at most `n` at once. */
export function pool(n: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];
  const next = () => {
    if (active >= n) return;
    const go = queue.shift();
    if (go) {
      active++;
      go();
    }
  };
  return <T>(job: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      queue.push(() => {
        job()
          .then(resolve, reject)
          .finally(() => {
            active--;
            next();
          });
      });
      next();
    });
}

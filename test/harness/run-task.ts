import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bundledTask, tempDir } from './paths';
import { noteStartedRun, recordRun, registerSecretsFromEnv } from './secrets';
import { TaskOutcome, taskOutcome } from './vso';

/** A finished run of a task: how it ended, what it printed, and what the agent made of its commands. */
export interface TaskRun extends TaskOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunOptions {
  /** Task inputs by their task.json names; become INPUT_<NAME>. */
  inputs?: Record<string, string>;
  /** Extra environment (ENDPOINT_*, AGENT_*, SYSTEM_*...). */
  env?: Record<string, string | undefined>;
  /** Override the entry file (defaults to the bundled task). */
  entry?: string;
  /** Kill the task after this long (test safety net). */
  timeoutMs?: number;
  /** Called with the child once spawned (e.g. to send SIGINT later). */
  onSpawn?: (child: ChildProcess) => void;
  /** Called with each stdout line as it arrives. */
  onLine?: (line: string) => void;
  /** Start with only these env vars from the parent (PATH, HOME). Default true. */
  cleanEnv?: boolean;
}

/** Agent-like environment: tool cache and temp folders, no real agent. */
export function agentEnv(base = tempDir('agent')): Record<string, string> {
  const tools = path.join(base, 'tools');
  const temp = path.join(base, 'temp');
  fs.mkdirSync(tools, { recursive: true });
  fs.mkdirSync(temp, { recursive: true });
  return { AGENT_TOOLSDIRECTORY: tools, AGENT_TEMPDIRECTORY: temp, AGENT_WORKFOLDER: base };
}

/** Runs `node <task>` as the agent does: inputs as INPUT_* variables, output parsed from ##vso lines. */
export function runTask(taskFolder: string, options: RunOptions = {}): Promise<TaskRun> {
  const entry = options.entry ?? bundledTask(taskFolder);
  const env: Record<string, string> = {};
  const parent = process.env;
  if (options.cleanEnv === false) Object.assign(env, parent);
  else for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']) if (parent[k] !== undefined) env[k] = parent[k]!;
  for (const [k, v] of Object.entries(options.inputs ?? {})) env['INPUT_' + k.replace(/[. ]/g, '_').toUpperCase()] = v;
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Suite-wide secret scan (test/harness/secrets.ts): every secret handed to a task is registered.
    registerSecretsFromEnv(env);
    noteStartedRun(taskFolder);
    const child = spawn(process.execPath, [entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      const s = d.toString();
      stdout += s;
      if (options.onLine) {
        pending += s;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const l of lines) options.onLine(l);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    options.onSpawn?.(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      recordRun({ task: taskFolder, argv: [process.execPath, entry], stdout, stderr });
      resolve({ code, signal, stdout, stderr, ...taskOutcome(stdout), durationMs: Date.now() - started });
    });
  });
}

/** Human-readable dump for assertion messages. */
export function describeRun(run: TaskRun): string {
  return `result=${run.result} code=${run.code}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

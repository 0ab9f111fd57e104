// Shared by test/e2e/gc.test.ts and test/e2e/guard.test.ts: run the BUNDLED DigitalOcean tasks as
// the agent does, against the test emulator, and check what they printed.
import * as assert from 'assert';
import * as fs from 'fs';
import { Emulator } from '../harness/emulator';
import { agentEnv, describeRun, runTask, TaskRun } from '../harness/run-task';
import { doConnection, timelineEnv } from '../harness/pipeline-env';

export interface RunSpec {
  inputs?: Record<string, string>;
  env?: Record<string, string>;
  connection?: boolean;
  timeline?: boolean | string;
  timeoutMs?: number;
  /** Each line the task prints, as it prints it. */
  onLine?: (line: string) => void;
}

/**
 * A task's `onLine` that moves a GC on only once the task has said it saw it: for each text, the
 * first line naming GC `uuid` and holding that text runs its step a second later. A GC driven this
 * way lasts as long as a task slow to start on a busy machine needs to see each of its states.
 */
export function whenTaskSays(uuid: string, steps: Record<string, () => void>): (line: string) => void {
  const left = { ...steps };
  return (line) => {
    for (const [text, step] of Object.entries(left)) {
      if (!line.includes(uuid) || !line.includes(text)) continue;
      delete left[text];
      setTimeout(step, 1000);
    }
  };
}

/** Runs a bundled task against the emulator and checks that no secret reached its output. */
export async function runDoTask(task: string, emu: Emulator, spec: RunSpec = {}): Promise<TaskRun> {
  const conn = spec.connection === false ? { inputs: {}, env: {} } : doConnection(emu);
  const run = await runTask(task, {
    inputs: { ...conn.inputs, ...(spec.inputs ?? {}) },
    env: {
      ...agentEnv(),
      ...conn.env,
      ...(spec.timeline ? timelineEnv(emu, typeof spec.timeline === 'string' ? spec.timeline : undefined) : {}),
      ...(spec.env ?? {}),
    },
    timeoutMs: spec.timeoutMs ?? 60_000,
    onLine: spec.onLine,
  });
  assertNoSecrets(run, emu);
  return run;
}

export function assertNoSecrets(run: TaskRun, emu: Emulator): void {
  for (const secret of [emu.token, emu.buildAccessToken]) {
    assert.ok(!run.stdout.includes(secret), `a secret appeared in stdout:\n${describeRun(run)}`);
    assert.ok(!run.stderr.includes(secret), `a secret appeared in stderr:\n${describeRun(run)}`);
  }
}

export function expectResult(run: TaskRun, result: string): void {
  assert.strictEqual(run.result, result, describeRun(run));
}

/** The Markdown attached with ##vso[task.uploadsummary]. */
export function summaryOf(run: TaskRun): string {
  const c = run.commands.find((x) => x.command === 'task.uploadsummary');
  assert.ok(c, `no build summary uploaded:\n${describeRun(run)}`);
  return fs.readFileSync(c!.message.trim(), 'utf8');
}

/** A push-scoped token request against the emulator's /v2/registry/auth (what cosign attest does). */
export async function pushTokenStatus(emu: Emulator, registry = 'demo-registry'): Promise<number> {
  const q = new URLSearchParams({ service: 'registry.digitalocean.com', scope: `repository:${registry}/app:push,pull` });
  const res = await fetch(`${emu.apiUrl}/v2/registry/auth?${q}`, {
    headers: { authorization: `Basic ${Buffer.from(`${emu.token}:${emu.token}`).toString('base64')}` },
  });
  await res.arrayBuffer();
  return res.status;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

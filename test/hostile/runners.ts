// One runner per task: builds the inputs and environment with small budgets, runs the BUNDLED
// task (test/harness/run-task.ts runTask) and returns what the property check needs.
import { runTask } from '../harness/run-task';
import { tools } from '../harness/paths';
import { registerSecret } from '../harness/secrets';
import { Agent, agent, doConnection, keyPair, randomSecret, timelineConnection } from './env';
import { CaseOutcome, Expect, killAfterMs } from './properties';

import { COSIGN_TASK, GC_TASK, INSTALLER_TASK, WAIT_TASK } from '../harness/paths';

export { COSIGN_TASK, GC_TASK, INSTALLER_TASK, WAIT_TASK };
export const DO_ID = 'hostiledo';
export const REG_ID = 'hostilereg';
export const REGISTRY = 'hostile-reg';

export interface RunSpec {
  inputs?: Record<string, string>;
  env?: Record<string, string>;
  secrets?: string[];
  result?: Expect['result'];
  extra?: Expect['extra'];
  networkRequests?: Expect['networkRequests'];
  childCalls?: Expect['childCalls'];
  /** Closed after the run (servers of the case). */
  cleanup?: Array<{ close(): Promise<void> }>;
}

async function go(task: string, a: Agent, budgetS: number, inputs: Record<string, string>, env: Record<string, string>, spec: RunSpec): Promise<CaseOutcome> {
  // Every secret of the case joins the suite-wide scan (test/harness/secrets.ts) too.
  for (const s of spec.secrets ?? []) registerSecret(s);
  try {
    const run = await runTask(task, { inputs: { ...inputs, ...spec.inputs }, env: { ...a.env, ...env, ...spec.env }, timeoutMs: killAfterMs(budgetS) });
    const expect: Expect = {
      task,
      secrets: spec.secrets ?? [],
      budgetS,
      result: spec.result,
      agentTemp: a.temp,
      extra: spec.extra,
      networkRequests: spec.networkRequests,
      childCalls: spec.childCalls,
    };
    return { run, expect };
  } finally {
    await Promise.all((spec.cleanup ?? []).map((c) => c.close()));
  }
}

/** DoRegistryGcWait@1 on the DigitalOcean API at `apiUrl`: 6 s timeout, 1 s polls, no settle. */
export function runWait(apiUrl: string, spec: RunSpec = {}, timeoutS = 6): Promise<CaseOutcome> {
  const token = randomSecret('dop_v1_hostile_');
  const inputs = {
    digitalOceanConnection: DO_ID,
    registry: REGISTRY,
    timeoutSeconds: String(timeoutS),
    pollIntervalSeconds: '1',
    settleSeconds: '0',
    onTimeout: 'fail',
  };
  return go(WAIT_TASK, agent(), timeoutS, inputs, doConnection(DO_ID, apiUrl, token), { ...spec, secrets: [token, ...(spec.secrets ?? [])] });
}

/** DoRegistryGarbageCollection@1: start a GC and wait for it, 6 s timeout. */
export function runGc(apiUrl: string, spec: RunSpec = {}, timeoutS = 6): Promise<CaseOutcome> {
  const token = randomSecret('dop_v1_hostile_');
  const inputs = { digitalOceanConnection: DO_ID, registry: REGISTRY, timeoutSeconds: String(timeoutS), pollIntervalSeconds: '1', warnAfterMinutes: '1' };
  return go(GC_TASK, agent(), timeoutS, inputs, doConnection(DO_ID, apiUrl, token), { ...spec, secrets: [token, ...(spec.secrets ?? [])] });
}

/** DoRegistryGcWait@1 waiting for stage Build on the timeline at `collection`, no DigitalOcean. */
export function runTimeline(collection: string, spec: RunSpec = {}, timeoutS = 6): Promise<CaseOutcome> {
  const token = randomSecret('ado_hostile_');
  const inputs = { waitForStages: 'Build', timeoutSeconds: String(timeoutS), pollIntervalSeconds: '1', settleSeconds: '0', onTimeout: 'fail' };
  return go(
    WAIT_TASK,
    agent(),
    timeoutS,
    inputs,
    { ...timelineConnection(collection, token), SYSTEM_STAGENAME: 'Sign' },
    { ...spec, secrets: [token, ...(spec.secrets ?? [])] },
  );
}

/** The Cosign@1 attempt budget of the hostile cases: 2 attempts of 4 s, 1 s backoff. */
export const COSIGN_BUDGET_S = 2 * 4 + 1;

/** Cosign@1 sign of `images` with a real key, over plain http, no guard, no tlog, small budgets. */
export async function runCosign(images: string, spec: RunSpec = {}, cosignPath = tools.cosign3): Promise<CaseOutcome> {
  const k = await keyPair();
  const inputs = {
    command: 'sign',
    images,
    key: k.key,
    keyPassword: k.password,
    cosignPath,
    tlogUpload: 'false',
    allowHttpRegistry: 'true',
    allowInsecureRegistry: 'true',
    gcGuard: 'false',
    skipIfPresent: 'false',
    maxAttempts: '2',
    attemptTimeoutSeconds: '4',
    initialBackoffSeconds: '1',
    maxBackoffSeconds: '1',
    totalTimeoutMinutes: '1',
  };
  return go(COSIGN_TASK, agent(), COSIGN_BUDGET_S, inputs, {}, { ...spec, secrets: [k.password, ...(spec.secrets ?? [])] });
}

/** CosignInstaller@1 of `version` from `baseUrl` with the installer's network deadline `timeoutS`. */
export function runInstaller(baseUrl: string, version: string, spec: RunSpec & { agent?: Agent } = {}, timeoutS = 5): Promise<CaseOutcome> {
  const inputs = { version, downloadBaseUrl: baseUrl, timeoutSeconds: String(timeoutS) };
  return go(INSTALLER_TASK, spec.agent ?? agent(), timeoutS, inputs, {}, spec);
}

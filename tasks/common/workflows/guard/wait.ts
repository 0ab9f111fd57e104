// DoRegistryGcWait@1: its inputs shaped (connection, stages, timeout), the guard, and how it ends
// (onTimeout: warn or fail), with nothing to guard a warning rather than a wait.
import { agentVariable } from '../../platform/agent';
import { UserError } from '../../platform/errors';
import { Logger, OutputTable } from '../../platform/output';
import { SettingValues } from '../../platform/settings';
import { TaskRun } from '../../platform/task';
import { DigitalOceanClient, doConnectionFrom } from '../../services/digitalocean';
import { readTimelineClient } from '../../services/timeline';
import { waitForGuard } from './index';
import { GuardResult } from './result';
import { GC_WAIT_SETTINGS, guardSettingsFrom } from './settings';

export { GC_WAIT_SETTINGS } from './settings';

/** What DoRegistryGcWait@1's outputs read. */
export type GcWaitReport = Pick<GuardResult, 'gcWaitSeconds' | 'gcWasActive' | 'gcObservedStatus' | 'stageWaitSeconds'>;

/** The outputs of DoRegistryGcWait@1. */
export const GC_WAIT_OUTPUTS: OutputTable<GcWaitReport> = {
  gcWaitSeconds: { grammar: 'wholeNumber', value: (r) => r.gcWaitSeconds },
  gcWasActive: { grammar: 'boolean', value: (r) => r.gcWasActive },
  gcObservedStatus: { grammar: 'statusWord', value: (r) => r.gcObservedStatus },
  stageWaitSeconds: { grammar: 'wholeNumber', value: (r) => r.stageWaitSeconds },
};

const NOTHING_GUARDED: GcWaitReport = { gcWaitSeconds: 0, gcWasActive: false, gcObservedStatus: 'none', stageWaitSeconds: 0 };

/** DoRegistryGcWait@1 from its inputs: every input validated before the first request. */
export async function gcWaitTask(inputs: SettingValues<typeof GC_WAIT_SETTINGS>, signal: AbortSignal, log: Logger): Promise<TaskRun<GcWaitReport>> {
  const settings = guardSettingsFrom(inputs, { minutes: inputs.timeoutMinutes, seconds: inputs.timeoutSeconds }, inputs.onTimeout);
  const conn = doConnectionFrom('digitalOceanConnection', inputs.digitalOceanConnection, false);
  const waitsForStages = settings.stages.length > 0;
  const timeline = readTimelineClient(waitsForStages, { log: log.info });
  if (!conn && !waitsForStages) {
    const message =
      'Nothing to guard: no DigitalOcean connection (input digitalOceanConnection or DIGITALOCEAN_ACCESS_TOKEN) and no waitForStages; the task did not wait.';
    log.warn(message);
    return { outputs: GC_WAIT_OUTPUTS, result: NOTHING_GUARDED, message };
  }

  const client = conn ? new DigitalOceanClient(conn, { log: log.info }) : undefined;
  const deps = { client, timeline: waitsForStages ? timeline : undefined, log, currentStage: agentVariable('SYSTEM_STAGENAME') };
  const result = await waitForGuard(deps, settings, signal);
  const requests = client ? [{ level: 'info' as const, text: `DigitalOcean API requests: ${client.requestCount}.` }] : [];
  const reported = { outputs: GC_WAIT_OUTPUTS, result, message: result.message };
  if (!result.timedOut) return { ...reported, closing: [...requests, { level: 'info', text: result.message }] };
  if (settings.onTimeout === 'warn') {
    return { ...reported, closing: [...requests, { level: 'warn', text: `${result.message} Continuing (onTimeout: warn).` }], withIssues: true };
  }
  return { ...reported, closing: requests, failure: new UserError(`${result.message} (onTimeout: fail)`) };
}

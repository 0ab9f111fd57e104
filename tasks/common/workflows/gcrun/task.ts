// DoRegistryGarbageCollection@1 from its inputs: every input validated before the first request,
// the run, and its report (outputs, summary, the API requests it made, how it ends).
import { UserError } from '../../platform/errors';
import { Logger } from '../../platform/output';
import { SettingValues } from '../../platform/settings';
import { TaskRun } from '../../platform/task';
import { DigitalOceanClient, doConnectionFrom } from '../../services/digitalocean';
import { runGarbageCollection } from './run';
import { GC_RUN_SETTINGS, gcRunSettingsFrom } from './settings';
import { GC_RUN_OUTPUTS, GcReport } from './summary';

export async function gcRunTask(inputs: SettingValues<typeof GC_RUN_SETTINGS>, signal: AbortSignal, log: Logger): Promise<TaskRun<GcReport>> {
  const settings = gcRunSettingsFrom(inputs);
  const conn = doConnectionFrom('digitalOceanConnection', inputs.digitalOceanConnection, true)!;
  const client = new DigitalOceanClient(conn, { log: log.info });
  const result = await runGarbageCollection(client, settings, signal, log);
  return {
    outputs: GC_RUN_OUTPUTS,
    result: result.report,
    summary: { name: 'registry-gc', markdown: result.summary },
    closing: [{ level: 'info', text: `DigitalOcean API requests: ${client.requestCount}.` }],
    failure: result.outcome === 'failed' ? new UserError(result.message) : undefined,
    withIssues: result.outcome === 'withIssues',
    message: result.message,
  };
}

// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { info, logger, setOutput, uploadSummary } from '../common/platform/output';
import { runTask } from '../common/platform/task';
import { DigitalOceanClient, doConnectionFrom } from '../common/services/digitalocean';
import { UserError } from '../common/platform/errors';
import { GC_RUN_OUTPUTS, GC_RUN_SETTINGS, gcRunSettingsFrom, runGarbageCollection } from '../common/workflows/gcrun';
import { readSettings } from '../common/platform/settings';

void runTask(async (signal) => {
  // Every input is validated before the first request.
  const inputs = readSettings(GC_RUN_SETTINGS);
  const settings = gcRunSettingsFrom(inputs);
  const conn = doConnectionFrom('digitalOceanConnection', inputs.digitalOceanConnection, true)!;

  const client = new DigitalOceanClient(conn, { log: info });
  const result = await runGarbageCollection(client, settings, signal, logger);

  for (const [name, value] of Object.entries(result.outputs)) setOutput(name, value, GC_RUN_OUTPUTS[name]);
  uploadSummary('registry-gc', result.summary);
  info(`DigitalOcean API requests: ${client.requestCount}.`);

  if (result.outcome === 'failed') throw new UserError(result.message);
  return { withIssues: result.outcome === 'withIssues', message: result.message };
});

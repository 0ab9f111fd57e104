// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { info, logger, setOutput, warn } from '../common/platform/output';
import { runTask } from '../common/platform/task';
import { DigitalOceanClient, doConnectionFrom } from '../common/services/digitalocean';
import { UserError } from '../common/platform/errors';
import { GC_WAIT_SETTINGS, guardSettingsFrom, waitForGuard } from '../common/workflows/guard';
import { readSettings } from '../common/platform/settings';
import { readTimelineClient } from '../common/services/timeline';
import { agentVariable } from '../common/platform/agent';

void runTask(async (signal) => {
  // Every input is validated before the first request.
  const inputs = readSettings(GC_WAIT_SETTINGS);
  const settings = guardSettingsFrom(inputs, { minutes: inputs.timeoutMinutes, seconds: inputs.timeoutSeconds }, inputs.onTimeout);
  const conn = doConnectionFrom('digitalOceanConnection', inputs.digitalOceanConnection, false);
  const timeline = readTimelineClient(settings.stages.length > 0, { log: info });

  if (!conn && settings.stages.length === 0) {
    const message =
      'Nothing to guard: no DigitalOcean connection (input digitalOceanConnection or DIGITALOCEAN_ACCESS_TOKEN) and no waitForStages; the task did not wait.';
    warn(message);
    setOutput('gcWaitSeconds', 0, { grammar: 'wholeNumber' });
    setOutput('gcWasActive', false, { grammar: 'boolean' });
    setOutput('gcObservedStatus', 'none', { grammar: 'statusWord' });
    setOutput('stageWaitSeconds', 0, { grammar: 'wholeNumber' });
    return { message };
  }

  const client = conn ? new DigitalOceanClient(conn, { log: info }) : undefined;
  const result = await waitForGuard(
    { client, timeline: settings.stages.length > 0 ? timeline : undefined, log: logger, currentStage: agentVariable('SYSTEM_STAGENAME') },
    settings,
    signal,
  );

  setOutput('gcWaitSeconds', result.gcWaitSeconds, { grammar: 'wholeNumber' });
  setOutput('gcWasActive', result.gcWasActive, { grammar: 'boolean' });
  setOutput('gcObservedStatus', result.gcObservedStatus, { grammar: 'statusWord' });
  setOutput('stageWaitSeconds', result.stageWaitSeconds, { grammar: 'wholeNumber' });
  if (client) info(`DigitalOcean API requests: ${client.requestCount}.`);

  if (result.timedOut) {
    if (settings.onTimeout === 'warn') {
      warn(`${result.message} Continuing (onTimeout: warn).`);
      return { withIssues: true, message: result.message };
    }
    throw new UserError(`${result.message} (onTimeout: fail)`);
  }
  info(result.message);
  return { message: result.message };
});

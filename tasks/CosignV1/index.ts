// The entry imports runTask alone: runTask guards the output, then loads the workflow (nothing the
// task imports runs before the guard), reads the settings, and reports the TaskRun the workflow returns.
import { runTask } from '../common/platform/task';

void runTask(
  () => require('../common/workflows/cosign') as typeof import('../common/workflows/cosign'),
  (cosign, context) => cosign.cosignTask(cosign.cosignSettingsFrom(context.readSettings(cosign.COSIGN_SETTINGS)), context),
);

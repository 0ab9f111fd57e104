// The entry imports runTask alone: runTask guards the output, then loads the workflow (nothing the
// task imports runs before the guard), reads the settings, and reports the TaskRun the workflow returns.
import { runTask } from '../common/platform/task';

void runTask(
  () => require('../common/workflows/tags/cleanup') as typeof import('../common/workflows/tags/cleanup'),
  (cleanup, { readSettings, signal, log }) => cleanup.cleanupTask(cleanup.cleanupSettingsFrom(readSettings(cleanup.CLEANUP_SETTINGS)), signal, log),
);

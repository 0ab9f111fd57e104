// The entry imports runTask alone: runTask guards the output, then loads the workflow (nothing the
// task imports runs before the guard), reads the settings, and reports the TaskRun the workflow returns.
import { runTask } from '../common/platform/task';

void runTask(
  () => require('../common/workflows/tags/check') as typeof import('../common/workflows/tags/check'),
  (check, { readSettings, signal, log }) => check.tagCheckTask(check.tagCheckSettingsFrom(readSettings(check.TAG_CHECK_SETTINGS)), signal, log),
);

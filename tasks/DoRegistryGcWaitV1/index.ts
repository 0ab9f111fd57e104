// The entry imports runTask alone: runTask guards the output, then loads the workflow (nothing the
// task imports runs before the guard), reads the settings, and reports the TaskRun the workflow returns.
import { runTask } from '../common/platform/task';

void runTask(
  () => require('../common/workflows/guard/wait') as typeof import('../common/workflows/guard/wait'),
  (wait, { readSettings, signal, log }) => wait.gcWaitTask(readSettings(wait.GC_WAIT_SETTINGS), signal, log),
);

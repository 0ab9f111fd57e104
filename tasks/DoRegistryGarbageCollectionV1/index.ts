// The entry imports runTask alone: runTask guards the output, then loads the workflow (nothing the
// task imports runs before the guard), reads the settings, and reports the TaskRun the workflow returns.
import { runTask } from '../common/platform/task';

void runTask(
  () => require('../common/workflows/gcrun') as typeof import('../common/workflows/gcrun'),
  (gcrun, { readSettings, signal, log }) => gcrun.gcRunTask(readSettings(gcrun.GC_RUN_SETTINGS), signal, log),
);

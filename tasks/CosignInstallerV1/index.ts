// The entry imports runTask alone: runTask guards the output, then loads the workflow (nothing the
// task imports runs before the guard), reads the settings, and reports the TaskRun the workflow returns.
import { runTask } from '../common/platform/task';

void runTask(
  () => require('../common/tools/install') as typeof import('../common/tools/install'),
  async (install, { readSettings, signal, log }) =>
    install.installerTask(await install.installRequestFrom(readSettings(install.INSTALLER_SETTINGS)), signal, log),
);

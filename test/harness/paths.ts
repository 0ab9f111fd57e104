import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// Where things are: the repository, the real tools in .tools/bin, a task's bundled and unbundled
// entry, its task.json, fresh temp folders.

/** The task folders, as the end-to-end suites name them. */
export const GC_TASK = 'DoRegistryGarbageCollectionV1';
export const WAIT_TASK = 'DoRegistryGcWaitV1';
export const COSIGN_TASK = 'CosignV1';
export const INSTALLER_TASK = 'CosignInstallerV1';
export const TAG_CHECK_TASK = 'RegistryTagCheckV1';
export const CLEANUP_TASK = 'RegistryCleanupV1';

/** The repository root (this file compiles to out/test/harness/). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const TOOLS_BIN = path.join(ROOT, '.tools', 'bin');

export const tools = {
  cosign2: path.join(TOOLS_BIN, 'cosign2'),
  cosign3: path.join(TOOLS_BIN, 'cosign3'),
  crane: path.join(TOOLS_BIN, 'crane'),
  registry: path.join(TOOLS_BIN, 'registry'),
};

/** The bundled task entry, exactly as the VSIX ships it. */
export function bundledTask(taskFolder: string): string {
  return path.join(ROOT, 'tasks', taskFolder, 'index.js');
}

/** The unbundled tsc output of a task (for L0 tests with MockTestRunner). */
export function unbundledTask(taskFolder: string): string {
  return path.join(ROOT, 'out', 'tasks', taskFolder, 'index.js');
}

export function taskJson(taskFolder: string): string {
  return path.join(ROOT, 'tasks', taskFolder, 'task.json');
}

/** A fresh temp folder, removed by the caller (or left for the OS). */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cgg-${prefix}-`));
}

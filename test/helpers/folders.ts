// What the installer tests read of a folder after a run.
import * as fs from 'fs';

/** Entries of a folder (none when it does not exist), without task-lib's vault key file. */
export function folderEntries(dir: string): string[] {
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f !== '.taskkey')
        .sort()
    : [];
}

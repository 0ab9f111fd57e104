// Files whose bytes are proven: hashed (or read) through one descriptor, then checked to be the
// same unmodified regular file the path names, so a file swapped or rewritten during a check is
// caught instead of trusted.
import * as crypto from 'crypto';
import * as fs from 'fs';

export const NO_FOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/** Why `file` is no longer the unmodified regular file `st` describes ('' when it still is). */
export function changedSince(file: string, st: fs.BigIntStats): string {
  let now: fs.BigIntStats;
  try {
    now = fs.lstatSync(file, { bigint: true });
  } catch {
    return 'it was removed';
  }
  if (now.isSymbolicLink()) return 'it was replaced by a symbolic link';
  if (!now.isFile()) return 'it is no longer a regular file';
  if (now.dev !== st.dev || now.ino !== st.ino) return 'it was replaced by another file';
  if (now.size !== st.size || now.mtimeNs !== st.mtimeNs) return 'it was modified';
  return '';
}

export interface StableHash {
  sha256: string;
  /** Why the bytes hashed may not be the file at the path now ('' when they are). */
  changed: string;
}

export interface StableRead {
  /** The bytes read (empty when `changed` says why they cannot be trusted). */
  bytes: Buffer;
  /** Why the bytes read may not be the file at the path now ('' when they are). */
  changed: string;
}

/** Why the file read through `fh` may not be the one `first` saw at the path, or the one there now ('' when it is). */
async function movedDuringRead(file: string, fh: fs.promises.FileHandle, first: fs.BigIntStats, before: fs.BigIntStats, total: bigint): Promise<string> {
  const after = await fh.stat({ bigint: true });
  if (before.dev !== first.dev || before.ino !== first.ino) return 'it was replaced by another file';
  if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.size !== total) return 'it was modified';
  return changedSince(file, after);
}

/** The path's lstat, or why it is not a regular file to open. */
function regularFile(file: string): { first: fs.BigIntStats; refused: string } {
  const first = fs.lstatSync(file, { bigint: true });
  if (first.isSymbolicLink()) return { first, refused: 'it is a symbolic link' };
  if (!first.isFile()) return { first, refused: 'it is not a regular file' };
  return { first, refused: '' };
}

/**
 * Hashes a file through one descriptor, then proves the path still names that same regular file,
 * unmodified (same dev/ino/size/mtime before and after the read, and as lstat sees the path now):
 * a file swapped or rewritten during the check is caught instead of trusted. Throws ENOENT.
 */
export async function hashUnchanged(file: string): Promise<StableHash> {
  const { first, refused } = regularFile(file);
  if (refused) return { sha256: '', changed: refused };
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | NO_FOLLOW);
  try {
    const before = await fh.stat({ bigint: true });
    const hash = crypto.createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    let total = 0n;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      total += BigInt(bytesRead);
    }
    return { sha256: hash.digest('hex'), changed: await movedDuringRead(file, fh, first, before, total) };
  } finally {
    await fh.close();
  }
}

/**
 * Reads a whole file through one descriptor into one buffer (for a signature verified over its bytes),
 * with the same proof that the path still names the file read. Throws ENOENT.
 */
export async function readUnchanged(file: string): Promise<StableRead> {
  const { first, refused } = regularFile(file);
  if (refused) return { bytes: Buffer.alloc(0), changed: refused };
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | NO_FOLLOW);
  try {
    const before = await fh.stat({ bigint: true });
    // One byte more than the size: a file that grew while it was read is seen as modified.
    const bytes = Buffer.allocUnsafe(Number(before.size) + 1);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(bytes, total, bytes.length - total, null);
      if (bytesRead === 0 || total + bytesRead >= bytes.length) {
        total += bytesRead;
        break;
      }
      total += bytesRead;
    }
    const changed = await movedDuringRead(file, fh, first, before, BigInt(total));
    return { bytes: changed ? Buffer.alloc(0) : bytes.subarray(0, total), changed };
  } finally {
    await fh.close();
  }
}

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

export interface StableRead extends StableHash {
  /** The bytes read (empty when `changed` says why they cannot be trusted). */
  bytes: Buffer;
}

/**
 * Reads a file through one descriptor, hashing it, then proves the path still names that same
 * regular file, unmodified (same dev/ino/size/mtime before and after the read, and as lstat sees
 * the path now). `keep` holds the bytes for a caller that verifies a signature over them. Throws ENOENT.
 */
async function readStable(file: string, keep: boolean): Promise<StableRead> {
  const first = fs.lstatSync(file, { bigint: true });
  if (first.isSymbolicLink()) return { sha256: '', changed: 'it is a symbolic link', bytes: Buffer.alloc(0) };
  if (!first.isFile()) return { sha256: '', changed: 'it is not a regular file', bytes: Buffer.alloc(0) };
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | NO_FOLLOW);
  try {
    const before = await fh.stat({ bigint: true });
    const hash = crypto.createHash('sha256');
    const parts: Buffer[] = [];
    const scratch = Buffer.allocUnsafe(1 << 20);
    let total = 0n;
    for (;;) {
      const buf = keep ? Buffer.allocUnsafe(1 << 20) : scratch;
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      if (keep) parts.push(buf.subarray(0, bytesRead));
      total += BigInt(bytesRead);
    }
    const after = await fh.stat({ bigint: true });
    let changed = '';
    if (before.dev !== first.dev || before.ino !== first.ino) changed = 'it was replaced by another file';
    else if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.size !== total) changed = 'it was modified';
    else changed = changedSince(file, after);
    return { sha256: hash.digest('hex'), changed, bytes: changed ? Buffer.alloc(0) : Buffer.concat(parts) };
  } finally {
    await fh.close();
  }
}

/** The file's sha256, and whether the path still names the file hashed. Throws ENOENT. */
export async function hashUnchanged(file: string): Promise<StableHash> {
  const { sha256, changed } = await readStable(file, false);
  return { sha256, changed };
}

/** The file's bytes and sha256, and whether the path still names the file read. Throws ENOENT. */
export function readUnchanged(file: string): Promise<StableRead> {
  return readStable(file, true);
}

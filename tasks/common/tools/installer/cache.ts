// The agent's tool cache: tool-lib's layout (cosign/<version>/<arch>, marker <arch>.complete), an
// entry published by renaming a staged folder, and beside the binary what a cache hit is checked
// with again: the sha256 sidecar (a hint for messages only) and the release signature that admitted
// the binary (verified again over the cached bytes, never trusted for being there).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from '../../platform/errors';
import { Logger } from '../../platform/output';
import { CosignCommand, writeFlagRecord } from '../cosign';
import { Download } from './download';
import { NO_FOLLOW, hashUnchanged } from './proven-file';
import { CosignPlatform } from './release';
import { SignatureFormat } from './signature';
import { agentToolsDirectory } from '../../platform/agent';

export const TOOL_NAME = 'cosign';
/** Written beside the cached binary; a hint for messages only, never the digest a cache hit is checked against. */
const SIDECAR = 'cosign.sha256';
/** The release signature kept beside the cached binary, by format. */
const STORED_SIGNATURE: Record<SignatureFormat, string> = { bundle: 'cosign.sigstore.json', 'release-key': 'cosign.sig' };
/** A stored signature larger than the download cap for signatures is not one the task wrote. */
const STORED_SIGNATURE_LIMIT = 1 << 20;

/** The release signature that admitted a binary, as it was downloaded. */
export interface AdmittingSignature {
  format: SignatureFormat;
  bytes: Buffer;
}

export function cacheRoot(): string {
  const dir = agentToolsDirectory();
  if (!dir) throw new UserError('Agent.ToolsDirectory is not set; this task must run on an Azure Pipelines agent.');
  return dir;
}

export function removeCacheEntry(dir: string): void {
  fs.rmSync(`${dir}.complete`, { force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The sidecar's digest when it holds one ('' otherwise): a hint for messages, never trusted. */
export function readHint(dir: string): string {
  try {
    const v = fs.readFileSync(path.join(dir, SIDECAR), 'utf8').trim().toLowerCase();
    return /^[0-9a-f]{64}$/.test(v) ? v : '';
  } catch {
    return '';
  }
}

/** The release signatures kept in a cache entry (regular files within the cap), of the formats `allowed`. */
export function storedSignatures(dir: string, allowed: SignatureFormat[]): AdmittingSignature[] {
  const found: AdmittingSignature[] = [];
  for (const format of allowed) {
    const file = path.join(dir, STORED_SIGNATURE[format]);
    try {
      const st = fs.lstatSync(file);
      if (st.isFile() && st.size <= STORED_SIGNATURE_LIMIT) found.push({ format, bytes: fs.readFileSync(file) });
    } catch {
      /* not kept: this entry was admitted otherwise */
    }
  }
  return found;
}

/**
 * Copies the verified download into `dest` through one descriptor opened on the file that was
 * hashed (same dev/ino/size/mtime), hashing again as it copies: the cache gets exactly those bytes.
 */
async function copyVerified(src: string, got: Download, dest: string): Promise<void> {
  const fd = fs.openSync(src, fs.constants.O_RDONLY | NO_FOLLOW);
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (st.dev !== got.stat.dev || st.ino !== got.stat.ino || st.size !== got.stat.size || st.mtimeNs !== got.stat.mtimeNs) {
      throw new UserError('The downloaded cosign changed after it was verified; nothing was cached.');
    }
    const out = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NO_FOLLOW, 0o755);
    const hash = crypto.createHash('sha256');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n: number; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) {
        hash.update(buf.subarray(0, n));
        fs.writeSync(out, buf, 0, n);
      }
      fs.fchmodSync(out, 0o755);
    } finally {
      fs.closeSync(out);
    }
    if (hash.digest('hex') !== got.sha256) throw new UserError('The downloaded cosign changed while it was copied into the tool cache; nothing was cached.');
  } finally {
    fs.closeSync(fd);
  }
}

/** What one verified binary brings into its cache entry. */
export interface CacheEntry {
  version: string;
  plat: CosignPlatform;
  got: Download;
  flags: Record<CosignCommand, string[]> | undefined;
  signature: AdmittingSignature | undefined;
}

/**
 * Moves a verified binary into the tool cache by renaming a staged folder, so a half-written binary
 * is never visible under the final path, even with two jobs installing at once on one agent.
 */
export async function publishToCache(stagedBinary: string, entry: CacheEntry, log: Logger): Promise<string> {
  const { version, plat, got } = entry;
  const arch = os.arch();
  const versionDir = path.join(cacheRoot(), TOOL_NAME, version);
  const finalDir = path.join(versionDir, arch);
  fs.mkdirSync(versionDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(versionDir, `.${arch}.staging-`));
  fs.chmodSync(staging, 0o755);
  try {
    await copyVerified(stagedBinary, got, path.join(staging, plat.binaryName));
    fs.writeFileSync(path.join(staging, SIDECAR), `${got.sha256}\n`);
    if (entry.signature) fs.writeFileSync(path.join(staging, STORED_SIGNATURE[entry.signature.format]), entry.signature.bytes);
    // Renaming the folder keeps the binary's size, mtime and inode: the record still matches it.
    if (entry.flags) writeFlagRecord(path.join(staging, plat.binaryName), entry.flags);
    try {
      fs.renameSync(staging, finalDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw err;
      // Another job got there first: keep its copy if it is the same binary.
      const theirs = path.join(finalDir, plat.binaryName);
      const same = fs.existsSync(theirs) ? await hashUnchanged(theirs) : undefined;
      if (!same || same.changed || same.sha256 !== got.sha256) {
        removeCacheEntry(finalDir);
        fs.renameSync(staging, finalDir);
      } else {
        log.info(`Another job cached cosign ${version} at the same time; using its copy (same sha256).`);
      }
    }
    fs.writeFileSync(`${finalDir}.complete`, '');
    return finalDir;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

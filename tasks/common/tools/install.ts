import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as toolLib from 'azure-pipelines-tool-lib/tool';
import checksumTable from '../data/cosign-checksums.json';
import { CancelledError, UserError, errorMessage } from '../platform/errors';
import { HttpStatusError, classifyHttpFailure, request } from '../platform/http';
import { Logger, quote } from '../platform/output';
import { linkedDeadline, withRetry } from '../platform/retry';
import { requireHttpUrl } from '../platform/inputs';
import { SettingValues, SettingsTable, int, text } from '../platform/settings';
import { onExit } from '../platform/task';
import { CosignCommand, probeFlagSet, writeFlagRecord } from './cosign';
import { childEnv, runProcess } from '../platform/process';

export const DEFAULT_COSIGN_VERSION: string = checksumTable.defaultVersion;
export const DEFAULT_DOWNLOAD_BASE_URL = 'https://github.com/sigstore/cosign/releases/download';
/** The network deadline of one install (input timeoutSeconds): checksum file and binary, retries included. */
export const DEFAULT_TIMEOUT_SECONDS = 600;

/** The inputs of CosignInstaller@1, as its task.json declares them. */
export const INSTALLER_SETTINGS = {
  version: text(DEFAULT_COSIGN_VERSION),
  checksum: text(),
  downloadBaseUrl: text(DEFAULT_DOWNLOAD_BASE_URL),
  timeoutSeconds: int(DEFAULT_TIMEOUT_SECONDS, 1, 7200),
} as const satisfies SettingsTable;

/** What to install, from the installer's inputs: the version and checksum in their grammar, the mirror an http(s) URL. */
export function installRequestFrom(values: SettingValues<typeof INSTALLER_SETTINGS>): InstallRequest {
  return {
    version: normalizeVersion(values.version),
    checksum: normalizeChecksum(values.checksum),
    baseUrl: requireHttpUrl('downloadBaseUrl', values.downloadBaseUrl).toString(),
    platform: cosignPlatform(),
    timeoutSeconds: values.timeoutSeconds,
  };
}
const TOOL_NAME = 'cosign';
/** Written beside the cached binary; a hint for messages only, never the digest a cache hit is checked against. */
const SIDECAR = 'cosign.sha256';
/** Attempts and backoffs of one download; the time they may take is the install's network deadline. */
const RETRY_SHAPE = { maxAttempts: 3, initialBackoffSeconds: 2, maxBackoffSeconds: 10 };
const NO_FOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/** A value from outside quoted in a one-line message (URLs and paths get more room than the default). */
function q(value: string): string {
  return quote(value, 200);
}

/** "3.0.6" or "v3.0.6" (optionally a pre-release suffix); no ranges, no "latest". */
export function normalizeVersion(input: string): string {
  const m = /^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(input.trim());
  if (!m) {
    throw new UserError(
      `Input 'version' must be an explicit cosign release such as 3.0.6 or v3.0.6, got '${quote(input)}' (ranges and 'latest' are refused so every run installs the same binary).`,
    );
  }
  return m[1];
}

export function normalizeChecksum(input: string): string {
  const v = input.trim().toLowerCase();
  if (v !== '' && !/^[0-9a-f]{64}$/.test(v)) {
    throw new UserError(`Input 'checksum' must be a sha256 of 64 hex digits, got '${quote(input)}'.`);
  }
  return v;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const SUPPORTED: Record<string, string[]> = {
  linux: ['amd64', 'arm64', 'arm', 'ppc64le', 's390x', 'riscv64'],
  darwin: ['amd64', 'arm64'],
  windows: ['amd64'],
};

export interface CosignPlatform {
  /** Key in the checksum table, e.g. "linux-amd64". */
  key: string;
  /** Release asset name, e.g. "cosign-linux-amd64" or "cosign-windows-amd64.exe". */
  asset: string;
  binaryName: string;
}

/** Maps Node's os.platform()/os.arch() to cosign's release asset. */
export function cosignPlatform(platform: string = os.platform(), arch: string = os.arch()): CosignPlatform {
  const goOs = platform === 'win32' ? 'windows' : platform;
  const goArch = GO_ARCH[arch] ?? arch;
  if (!SUPPORTED[goOs]?.includes(goArch)) {
    throw new UserError(
      `cosign publishes no binary for this agent's platform ${quote(platform)}/${quote(arch)}; supported: linux amd64/arm64/arm/ppc64le/s390x/riscv64, darwin amd64/arm64, windows amd64.`,
    );
  }
  const exe = goOs === 'windows' ? '.exe' : '';
  return { key: `${goOs}-${goArch}`, asset: `cosign-${goOs}-${goArch}${exe}`, binaryName: `cosign${exe}` };
}

export function tableChecksum(version: string, platformKey: string): string | undefined {
  const versions = checksumTable.versions as Record<string, Record<string, string>>;
  return versions[version]?.[platformKey];
}

export function releaseUrl(baseUrl: string, version: string, file: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v${version}/${file}`;
}

/**
 * The distinct digests cosign_checksums.txt lists for `asset`. Only lines of the form
 * `<64 hex>  <name>` (sha256sum's format, optionally `*name`) count; anything else in the file
 * (an HTML page, comments, other tools' formats) is ignored, never echoed.
 */
export function checksumsFor(text: string, asset: string): string[] {
  const found = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)$/.exec(line.trim());
    if (m && m[2] === asset) found.add(m[1].toLowerCase());
  }
  return [...found];
}

// ---------------------------------------------------------------------------------------------
// Files whose bytes are proven: hashed through one descriptor, checked to be the file at the path

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

/**
 * Hashes a file through one descriptor, then proves the path still names that same regular file,
 * unmodified (same dev/ino/size/mtime before and after the read, and as lstat sees the path now):
 * a file swapped or rewritten during the check is caught instead of trusted. Throws ENOENT.
 */
export async function hashUnchanged(file: string): Promise<StableHash> {
  const first = fs.lstatSync(file, { bigint: true });
  if (first.isSymbolicLink()) return { sha256: '', changed: 'it is a symbolic link' };
  if (!first.isFile()) return { sha256: '', changed: 'it is not a regular file' };
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
    const after = await fh.stat({ bigint: true });
    let changed = '';
    if (before.dev !== first.dev || before.ino !== first.ino) changed = 'it was replaced by another file';
    else if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.size !== total) changed = 'it was modified';
    else changed = changedSince(file, after);
    return { sha256: hash.digest('hex'), changed };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The network: one deadline for the whole install

interface NetworkDeadline {
  seconds: number;
  /** Fires at the deadline or on the job's cancellation. */
  signal: AbortSignal;
  job: AbortSignal;
  remainingMs(): number;
  /** The deadline was reached (a request timer set to the remaining time may fire a moment before it). */
  outOfTime(): boolean;
  clear(): void;
}

function networkDeadline(job: AbortSignal, seconds: number): NetworkDeadline {
  const endsAt = Date.now() + seconds * 1000;
  const d = linkedDeadline(job, seconds * 1000);
  return {
    seconds,
    signal: d.signal,
    job,
    remainingMs: () => Math.max(0, endsAt - Date.now()),
    outOfTime: () => d.expired() || Date.now() >= endsAt - 25,
    clear: d.clear,
  };
}

interface Download {
  sha256: string;
  /** The file as it was when the last byte was written. */
  stat: fs.BigIntStats;
}

/** GETs a URL into a new private file, hashing the bytes as they are written; returns their sha256. */
async function downloadHashed(url: string, dest: string, signal: AbortSignal, timeoutMs: number): Promise<Download> {
  const hash = crypto.createHash('sha256');
  fs.rmSync(dest, { force: true });
  const fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NO_FOLLOW, 0o600);
  try {
    const res = await request({
      method: 'GET',
      url,
      kind: 'binary',
      signal,
      timeoutMs,
      maxRedirects: 5,
      onChunk: (chunk) => {
        hash.update(chunk);
        fs.writeSync(fd, chunk);
      },
    });
    if (res.status !== 200) throw new HttpStatusError(`GET ${q(url)} answered HTTP ${res.status}`, res.status);
    return { sha256: hash.digest('hex'), stat: fs.fstatSync(fd, { bigint: true }) };
  } finally {
    fs.closeSync(fd);
  }
}

async function fetchText(url: string, signal: AbortSignal, timeoutMs: number): Promise<string> {
  const res = await request({ method: 'GET', url, kind: 'checksums', signal, timeoutMs, maxRedirects: 5 });
  if (res.status !== 200) throw new HttpStatusError(`GET ${q(url)} answered HTTP ${res.status}`, res.status);
  return res.body.toString('utf8');
}

/** Retries transient failures while the install's network deadline allows; every request gets the time left. */
async function downloadRetry<T>(what: string, op: (signal: AbortSignal, timeoutMs: number) => Promise<T>, net: NetworkDeadline, log: Logger): Promise<T> {
  let last = '';
  const failure = (detail: string) =>
    net.outOfTime()
      ? new UserError(
          `Could not download ${q(what)} within timeoutSeconds (${net.seconds}s)${detail ? `: ${q(detail)}` : ''}; check the mirror or raise timeoutSeconds.`,
        )
      : new UserError(`Could not download ${q(what)}: ${q(detail)}`);
  try {
    const remaining = net.remainingMs();
    if (remaining <= 0) throw new CancelledError('deadline');
    const r = await withRetry((_attempt, s) => op(s, Math.max(1, net.remainingMs())), {
      budget: { ...RETRY_SHAPE, attemptTimeoutSeconds: net.seconds, totalTimeoutSeconds: remaining / 1000 },
      classify: classifyHttpFailure,
      signal: net.signal,
      onFailure: (r) => {
        last = errorMessage(r.error);
        log.info(
          `Download of ${q(what)} failed (attempt ${r.attempt}/${r.maxAttempts}, ${r.failure.reason}): ${q(last)}${r.nextWaitMs !== undefined ? `; retrying in ${(r.nextWaitMs / 1000).toFixed(1)}s` : ''}`,
        );
      },
      giveUp: (failed) => failure(errorMessage(failed.lastError)),
    });
    return r.value;
  } catch (err) {
    if (net.job.aborted) throw new CancelledError();
    // The install's own deadline ended a request in flight (or left no time for one).
    if (err instanceof CancelledError && net.outOfTime()) throw failure(last);
    throw err;
  }
}

/**
 * The digest the release itself publishes in cosign_checksums.txt for this asset. `lead` opens the
 * message when it cannot be read. Nothing of the file is ever printed but the one digest matched.
 */
async function releaseChecksum(ins: Install, lead: string): Promise<string> {
  const { version, baseUrl } = ins.req;
  const asset = ins.plat.asset;
  const url = releaseUrl(baseUrl, version, 'cosign_checksums.txt');
  let text: string;
  try {
    text = await downloadRetry('cosign_checksums.txt', (s, ms) => fetchText(url, s, ms), ins.net, ins.log);
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    throw new UserError(
      `${lead}cosign ${version} is not in the task's checksum table, no 'checksum' input was given, and the release checksums could not be read (${errorMessage(err)}); set 'checksum' to the binary's sha256.`,
    );
  }
  const found = checksumsFor(text, asset);
  if (found.length === 0) {
    throw new UserError(
      `${lead}${q(url)} lists no checksum for ${asset} (no line '<64 hex digits>  ${asset}' in ${text.length} bytes); set the 'checksum' input.`,
    );
  }
  if (found.length > 1) throw new UserError(`${lead}${q(url)} lists ${found.length} different checksums for ${asset}; set the 'checksum' input.`);
  return found[0];
}

export interface InstallRequest {
  version: string;
  checksum: string;
  baseUrl: string;
  platform?: CosignPlatform;
  /** The network deadline of the whole install; DEFAULT_TIMEOUT_SECONDS when absent. */
  timeoutSeconds?: number;
}

export interface InstallResult {
  cosignPath: string;
  /** The folder to put first on PATH. */
  cosignDir: string;
  version: string;
  sha256: string;
  cacheHit: boolean;
  /** What `cosign version` reported for a fresh download; '' on a cache hit (the cached file is not run). */
}

function cacheRoot(): string {
  const dir = process.env['AGENT_TOOLSDIRECTORY'];
  if (!dir) throw new UserError('Agent.ToolsDirectory is not set; this task must run on an Azure Pipelines agent.');
  return dir;
}

function removeCacheEntry(dir: string): void {
  fs.rmSync(`${dir}.complete`, { force: true });
  fs.rmSync(dir, { recursive: true, force: true });
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

/**
 * Moves a verified binary into the tool cache at tool-lib's layout
 * (cosign/<version>/<arch>, marker <arch>.complete) by renaming a staged
 * folder, so a half-written binary is never visible under the final path,
 * even with two jobs installing at once on one agent.
 */
async function publishToCache(stagedBinary: string, got: Download, ins: Install, flags: Record<CosignCommand, string[]> | undefined): Promise<string> {
  const { version } = ins.req;
  const plat = ins.plat;
  const arch = os.arch();
  const versionDir = path.join(cacheRoot(), TOOL_NAME, version);
  const finalDir = path.join(versionDir, arch);
  fs.mkdirSync(versionDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(versionDir, `.${arch}.staging-`));
  fs.chmodSync(staging, 0o755);
  try {
    await copyVerified(stagedBinary, got, path.join(staging, plat.binaryName));
    fs.writeFileSync(path.join(staging, SIDECAR), `${got.sha256}\n`);
    // Renaming the folder keeps the binary's size, mtime and inode: the record still matches it.
    if (flags) writeFlagRecord(path.join(staging, plat.binaryName), flags);
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
        ins.log.info(`Another job cached cosign ${version} at the same time; using its copy (same sha256).`);
      }
    }
    fs.writeFileSync(`${finalDir}.complete`, '');
    return finalDir;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

async function runCosignVersion(binary: string, signal: AbortSignal): Promise<string> {
  const r = await runProcess(binary, ['version', '--json'], { env: childEnv(process.env, {}), signal, cancelSignal: signal, timeoutMs: 30_000 });
  if (r.code !== 0) return '';
  try {
    return String(JSON.parse(r.stdout).gitVersion ?? '');
  } catch {
    return '';
  }
}

/**
 * Runs `cosign version --json` on a binary whose sha256 was already verified;
 * when it reports a release version, that must be the requested one.
 */
async function checkReportedVersion(binary: string, ins: Install): Promise<void> {
  const version = ins.req.version;
  const reported = await runCosignVersion(binary, ins.net.job);
  if (/^v?\d+\.\d+\.\d+/.test(reported)) {
    if (reported.replace(/^v/, '') !== version) {
      throw new UserError(`The binary reports cosign ${quote(reported)}, but ${version} was requested; check downloadBaseUrl and checksum.`);
    }
  } else {
    ins.log.info(`cosign reports version '${quote(reported || 'unknown')}' (not a release version); trusting the verified sha256.`);
  }
}

/** The digest a binary must have, from outside the tool cache: the checksum input, else the task's table. */
interface Pin {
  input: string;
  table?: string;
}

/** The flags the verified binary lists, for the record beside the cached copy; a failure only costs Cosign@1 its probes. */
async function flagSetOf(binary: string, ins: Install): Promise<Record<CosignCommand, string[]> | undefined> {
  try {
    return await probeFlagSet(binary, ins.net.job);
  } catch (err) {
    if (ins.net.job.aborted) throw err;
    ins.log.debug(`cosign's flags were not recorded: ${errorMessage(err)}`);
    return undefined;
  }
}

/** One install's request, platform, pins, network deadline and logger, shared by its steps. */
interface Install {
  req: InstallRequest;
  plat: CosignPlatform;
  pin: Pin;
  net: NetworkDeadline;
  log: Logger;
}

function pinSource(pin: Pin): { expected: string; source: string } {
  if (pin.input) return { expected: pin.input, source: "the 'checksum' input" };
  if (pin.table) return { expected: pin.table, source: "the task's checksum table" };
  return { expected: '', source: '' };
}

function warnToPin(ins: Install, sha256: string, url: string): void {
  ins.log.info(`cosign ${ins.req.version} is not in the task's checksum table; trusting sha256 ${sha256} from ${q(url)}.`);
  ins.log.warn(`Pin this install by setting checksum: ${sha256} (${ins.plat.key}).`);
}

/**
 * A cache hit: the cached file, hashed through one descriptor, must match a digest from outside the
 * cache (the checksum input, the task's table, else cosign_checksums.txt read again from the mirror).
 * The sidecar only words the message. A mismatch or a swap removes the entry. Returns the sha256.
 */
async function verifyCacheHit(dir: string, ins: Install): Promise<string> {
  const { req, plat, pin } = ins;
  const bin = path.join(dir, plat.binaryName);
  const altered = (what: string) => {
    removeCacheEntry(dir);
    return new UserError(
      `The cached cosign ${req.version} at '${q(bin)}' ${what}: the agent's tool cache was altered. The cache entry was removed; re-run to download a verified copy.`,
    );
  };
  let h: StableHash;
  try {
    h = await hashUnchanged(bin);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw altered('is missing');
    throw err;
  }
  if (h.changed) throw altered(`cannot be verified (${h.changed} while it was checked)`);
  let { expected, source } = pinSource(pin);
  if (!expected) {
    const url = releaseUrl(req.baseUrl, req.version, 'cosign_checksums.txt');
    expected = await releaseChecksum(ins, `The cached cosign ${req.version} cannot be verified: `);
    source = `the release checksums (${q(url)})`;
    warnToPin(ins, expected, url);
  }
  if (h.sha256 !== expected) {
    const hint = readHint(dir);
    if (pin.input && (h.sha256 === pin.table || h.sha256 === hint)) {
      removeCacheEntry(dir);
      // The cached binary looks intact; the pin given by the user names another binary.
      throw new UserError(
        `The cached cosign ${req.version} at '${q(bin)}' has sha256 ${h.sha256} (${h.sha256 === pin.table ? "the task's checksum table" : 'as recorded when it was cached'}), but the 'checksum' input expects ${pin.input}. The cache entry was removed; check the 'checksum' input.`,
      );
    }
    throw altered(`has sha256 ${h.sha256}, expected ${expected} from ${source}`);
  }
  ins.log.info(`Found cosign ${req.version} in the tool cache (sha256 ${h.sha256} verified against ${source}; the verified file is not run again).`);
  return h.sha256;
}

/** The sidecar's digest when it holds one ('' otherwise): a hint for messages, never trusted. */
function readHint(dir: string): string {
  try {
    const v = fs.readFileSync(path.join(dir, SIDECAR), 'utf8').trim().toLowerCase();
    return /^[0-9a-f]{64}$/.test(v) ? v : '';
  } catch {
    return '';
  }
}

/**
 * A fresh install: download into a private 0700 folder, hashing as the bytes are written; that
 * same file (checked unchanged) is the one run for the version check and copied into the cache.
 */
async function downloadAndCache(ins: Install): Promise<{ dir: string; sha256: string }> {
  const { req, plat, pin, net } = ins;
  let { expected, source } = pinSource(pin);
  if (!expected) {
    const sumsUrl = releaseUrl(req.baseUrl, req.version, 'cosign_checksums.txt');
    expected = await releaseChecksum(ins, '');
    source = 'the release checksums';
    warnToPin(ins, expected, sumsUrl);
  }
  const url = releaseUrl(req.baseUrl, req.version, plat.asset);
  const tempDir = fs.mkdtempSync(path.join(process.env['AGENT_TEMPDIRECTORY'] || os.tmpdir(), 'cosign-dl-'));
  // Removed on every exit path, cancellation included.
  const forget = onExit(() => fs.rmSync(tempDir, { recursive: true, force: true }));
  try {
    fs.chmodSync(tempDir, 0o700);
    const tmp = path.join(tempDir, plat.binaryName);
    ins.log.info(`Downloading ${q(url)}`);
    const got = await downloadRetry(url, (s, ms) => downloadHashed(url, tmp, s, ms), net, ins.log);
    if (got.sha256 !== expected) {
      throw new UserError(`Checksum mismatch for ${q(url)}: got sha256 ${got.sha256}, expected ${expected} from ${source}. Nothing was cached or run.`);
    }
    ins.log.info(`sha256 ${got.sha256} matches ${source}.`);
    // Verified: it may run now, and only a binary that passed every check is cached.
    fs.chmodSync(tmp, 0o700);
    const moved = changedSince(tmp, got.stat);
    if (moved) throw new UserError(`The downloaded cosign in '${q(tempDir)}' changed after it was verified (${moved}); nothing was cached or run.`);
    // The verified file is the one run: for its version, and for the flags Cosign@1 would probe.
    const [, flags] = await Promise.all([checkReportedVersion(tmp, ins), flagSetOf(tmp, ins)]);
    const dir = await publishToCache(tmp, got, ins, flags);
    return { dir, sha256: got.sha256 };
  } finally {
    fs.rmSync(tempDir, { recursive: true, force: true });
    forget();
  }
}

/**
 * The whole install: cache lookup (re-verified against an outside digest), else download, verify,
 * cache. The caller puts `cosignDir` first on PATH, even when another cosign is there.
 */
export async function installCosign(req: InstallRequest, signal: AbortSignal, log: Logger): Promise<InstallResult> {
  const plat = req.platform ?? cosignPlatform();
  const pin: Pin = { input: req.checksum, table: tableChecksum(req.version, plat.key) };
  const net = networkDeadline(signal, req.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);
  const ins: Install = { req, plat, pin, net, log };
  try {
    let dir = toolLib.findLocalTool(TOOL_NAME, req.version);
    let sha256: string;
    const cacheHit = !!dir;
    if (dir) {
      sha256 = await verifyCacheHit(dir, ins);
    } else {
      ({ dir, sha256 } = await downloadAndCache(ins));
    }
    const cosignPath = path.join(dir, plat.binaryName);
    return { cosignPath, cosignDir: dir, version: req.version, sha256, cacheHit };
  } finally {
    net.clear();
  }
}

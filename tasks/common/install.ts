import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import * as toolLib from 'azure-pipelines-tool-lib/tool';
import checksumTable from './data/cosign-checksums.json';
import { UserError, errorMessage } from './errors';
import { HttpStatusError, classifyHttpFailure, request } from './http';
import { prependPath } from './output';
import { withRetry } from './retry';
import { info, onExit, warn } from './vso';
import { childEnv, runProcess } from './process';

export const DEFAULT_COSIGN_VERSION: string = checksumTable.defaultVersion;
export const DEFAULT_DOWNLOAD_BASE_URL = 'https://github.com/sigstore/cosign/releases/download';
const TOOL_NAME = 'cosign';
const SIDECAR = 'cosign.sha256';

/** Downloads are retried on transient failures; a cosign binary is ~100 MB. */
const DOWNLOAD_BUDGET = { maxAttempts: 3, attemptTimeoutSeconds: 600, initialBackoffSeconds: 2, maxBackoffSeconds: 10, totalTimeoutSeconds: 1900 };

/** A user value quoted in a one-line error message: newlines escaped, long values cut. */
function oneLine(value: string): string {
  const flat = value.replace(/\r?\n/g, '\\n');
  return flat.length > 80 ? flat.slice(0, 77) + '...' : flat;
}

/** "3.0.6" or "v3.0.6" (optionally a pre-release suffix); no ranges, no "latest". */
export function normalizeVersion(input: string): string {
  const m = /^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(input.trim());
  if (!m) {
    throw new UserError(
      `Input 'version' must be an explicit cosign release such as 3.0.6 or v3.0.6, got '${oneLine(input)}' (ranges and 'latest' are refused so every run installs the same binary).`,
    );
  }
  return m[1];
}

export function normalizeChecksum(input: string): string {
  const v = input.trim().toLowerCase();
  if (v !== '' && !/^[0-9a-f]{64}$/.test(v)) {
    throw new UserError(`Input 'checksum' must be a sha256 of 64 hex digits, got '${oneLine(input)}'.`);
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
      `cosign publishes no binary for this agent's platform ${platform}/${arch}; supported: linux amd64/arm64/arm/ppc64le/s390x/riscv64, darwin amd64/arm64, windows amd64.`,
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

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** GETs a URL into a file, hashing the bytes as they arrive; returns the sha256 of what was written. */
async function downloadHashed(url: string, dest: string, signal: AbortSignal, timeoutMs: number): Promise<string> {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(dest, 'w', 0o600);
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
    if (res.status !== 200) throw new HttpStatusError(`GET ${url} answered HTTP ${res.status}`, res.status);
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

async function fetchText(url: string, signal: AbortSignal, timeoutMs: number): Promise<string> {
  const res = await request({ method: 'GET', url, kind: 'checksums', signal, timeoutMs: Math.min(timeoutMs, 60_000), maxRedirects: 5 });
  if (res.status !== 200) throw new HttpStatusError(`GET ${url} answered HTTP ${res.status}`, res.status);
  return res.body.toString('utf8');
}

function downloadRetry<T>(what: string, op: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
  return withRetry((_attempt, s) => op(s), {
    budget: DOWNLOAD_BUDGET,
    classify: classifyHttpFailure,
    signal,
    onFailure: (r) => info(`Download of ${what} failed (attempt ${r.attempt}/${r.maxAttempts}, ${r.failure.reason}): ${errorMessage(r.error)}${r.nextWaitMs !== undefined ? `; retrying in ${(r.nextWaitMs / 1000).toFixed(1)}s` : ''}`),
  }).then((r) => r.value).catch((err) => {
    if (err instanceof UserError) throw err;
    const inner = (err as { lastError?: unknown }).lastError ?? err;
    throw new UserError(`Could not download ${what}: ${errorMessage(inner)}`);
  });
}

/** The digest the release itself publishes in cosign_checksums.txt for this asset. */
export async function releaseChecksum(baseUrl: string, version: string, asset: string, signal: AbortSignal): Promise<string> {
  const url = releaseUrl(baseUrl, version, 'cosign_checksums.txt');
  let text: string;
  try {
    text = await downloadRetry('cosign_checksums.txt', (s) => fetchText(url, s, DOWNLOAD_BUDGET.attemptTimeoutSeconds * 1000), signal);
  } catch (err) {
    throw new UserError(
      `cosign ${version} is not in the task's checksum table, no 'checksum' input was given, and the release checksums could not be read (${errorMessage(err)}); set 'checksum' to the binary's sha256.`,
    );
  }
  for (const line of text.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)$/.exec(line.trim());
    if (m && m[2] === asset) return m[1].toLowerCase();
  }
  throw new UserError(`${url} lists no checksum for ${asset}; set the 'checksum' input.`);
}

export interface InstallRequest {
  version: string;
  checksum: string;
  baseUrl: string;
  platform?: CosignPlatform;
}

export interface InstallResult {
  cosignPath: string;
  version: string;
  sha256: string;
  cacheHit: boolean;
  reportedVersion: string;
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
 * Moves a verified binary into the tool cache at tool-lib's layout
 * (cosign/<version>/<arch>, marker <arch>.complete) by renaming a staged
 * folder, so a half-written binary is never visible under the final path,
 * even with two jobs installing at once on one agent.
 */
async function publishToCache(stagedBinary: string, sha256: string, version: string, plat: CosignPlatform): Promise<string> {
  const arch = os.arch();
  const versionDir = path.join(cacheRoot(), TOOL_NAME, version);
  const finalDir = path.join(versionDir, arch);
  fs.mkdirSync(versionDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(versionDir, `.${arch}.staging-`));
  fs.chmodSync(staging, 0o755);
  try {
    const bin = path.join(staging, plat.binaryName);
    fs.copyFileSync(stagedBinary, bin);
    fs.chmodSync(bin, 0o755);
    fs.writeFileSync(path.join(staging, SIDECAR), `${sha256}\n`);
    try {
      fs.renameSync(staging, finalDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw err;
      // Another job got there first: keep its copy if it is the same binary.
      const theirs = path.join(finalDir, plat.binaryName);
      if (!fs.existsSync(theirs) || (await sha256File(theirs)) !== sha256) {
        removeCacheEntry(finalDir);
        fs.renameSync(staging, finalDir);
      } else {
        info(`Another job cached cosign ${version} at the same time; using its copy (same sha256).`);
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
async function checkReportedVersion(binary: string, version: string, signal: AbortSignal): Promise<string> {
  const reported = await runCosignVersion(binary, signal);
  if (/^v?\d+\.\d+\.\d+/.test(reported)) {
    if (reported.replace(/^v/, '') !== version) {
      throw new UserError(`The binary reports cosign ${reported}, but ${version} was requested; check downloadBaseUrl and checksum.`);
    }
  } else {
    info(`cosign reports version '${reported || 'unknown'}' (not a release version); trusting the verified sha256.`);
  }
  return reported;
}

/** The whole install: cache lookup (re-verified), else download, verify, cache; always prepend PATH. */
export async function installCosign(req: InstallRequest, signal: AbortSignal): Promise<InstallResult> {
  const plat = req.platform ?? cosignPlatform();
  const tablePin = tableChecksum(req.version, plat.key);
  const pinned = req.checksum || tablePin;
  const pinSource = req.checksum ? "the 'checksum' input" : pinned ? "the task's checksum table" : '';

  let dir = toolLib.findLocalTool(TOOL_NAME, req.version);
  let cacheHit = false;
  let sha256 = '';
  let reported = '';
  if (dir) {
    const bin = path.join(dir, plat.binaryName);
    const sidecar = path.join(dir, SIDECAR);
    const recorded = fs.existsSync(sidecar) ? fs.readFileSync(sidecar, 'utf8').trim() : '';
    const expected = pinned || recorded;
    const actual = fs.existsSync(bin) ? await sha256File(bin) : 'missing';
    if (!expected || actual !== expected) {
      removeCacheEntry(dir);
      if (req.checksum && actual !== 'missing' && (actual === tablePin || actual === recorded)) {
        // The cached binary is intact; the pin given by the user names another binary.
        throw new UserError(
          `The cached cosign ${req.version} at ${bin} has sha256 ${actual} (${actual === tablePin ? "the task's checksum table" : 'as recorded when it was cached'}), but the 'checksum' input expects ${req.checksum}. The cache entry was removed; check the 'checksum' input.`,
        );
      }
      throw new UserError(
        `The cached cosign ${req.version} at ${bin} has sha256 ${actual}, expected ${expected || 'a recorded digest'}: the agent's tool cache was altered. The cache entry was removed; re-run to download a verified copy.`,
      );
    }
    info(`Found cosign ${req.version} in the tool cache (sha256 ${actual} verified).`);
    try {
      reported = await checkReportedVersion(bin, req.version, signal);
    } catch (err) {
      removeCacheEntry(dir);
      throw err;
    }
    cacheHit = true;
    sha256 = actual;
  } else {
    let expected = pinned;
    if (!expected) {
      expected = await releaseChecksum(req.baseUrl, req.version, plat.asset, signal);
      info(`cosign ${req.version} is not in the task's checksum table; trusting sha256 ${expected} from ${releaseUrl(req.baseUrl, req.version, 'cosign_checksums.txt')}.`);
      warn(`Pin this install by setting checksum: ${expected} (${plat.key}).`);
    }
    const url = releaseUrl(req.baseUrl, req.version, plat.asset);
    const tempDir = fs.mkdtempSync(path.join(process.env['AGENT_TEMPDIRECTORY'] || os.tmpdir(), 'cosign-dl-'));
    // Removed on every exit path, cancellation included.
    const forget = onExit(() => fs.rmSync(tempDir, { recursive: true, force: true }));
    try {
      const tmp = path.join(tempDir, plat.binaryName);
      info(`Downloading ${url}`);
      const actual = await downloadRetry(url, async (s) => {
        fs.rmSync(tmp, { force: true });
        return downloadHashed(url, tmp, s, DOWNLOAD_BUDGET.attemptTimeoutSeconds * 1000);
      }, signal);
      if (actual !== expected) {
        throw new UserError(`Checksum mismatch for ${url}: got sha256 ${actual}, expected ${expected} from ${pinSource || 'the release checksums'}. Nothing was cached or run.`);
      }
      info(`sha256 ${actual} matches ${pinSource || 'the release checksums'}.`);
      // Verified: it may run now, and only a binary that passed every check is cached.
      fs.chmodSync(tmp, 0o700);
      reported = await checkReportedVersion(tmp, req.version, signal);
      dir = await publishToCache(tmp, actual, req.version, plat);
      sha256 = actual;
    } finally {
      fs.rmSync(tempDir, { recursive: true, force: true });
      forget();
    }
  }

  const cosignPath = path.join(dir, plat.binaryName);
  // Always prepend, even when another cosign is on PATH (seed 000's install bug).
  prependPath(dir);
  return { cosignPath, version: req.version, sha256, cacheHit, reportedVersion: reported };
}

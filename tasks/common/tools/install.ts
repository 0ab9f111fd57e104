// CosignInstaller@1's one workflow: the binary's sha256 from outside the mirror (the checksum input,
// the task's table, else the digest the release's own signature covers, verified offline), checked
// before the binary is cached or run; a cache hit checked again against that same truth.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as toolLib from 'azure-pipelines-tool-lib/tool';
import { agentVariable } from '../platform/agent';
import { UserError, errorMessage } from '../platform/errors';
import { requireHttpUrl } from '../platform/inputs';
import { Logger, OutputTable, quote } from '../platform/output';
import { SettingValues, SettingsTable, int, text } from '../platform/settings';
import { TaskRun, onExit } from '../platform/task';
import { childEnvironment, runProcess } from '../platform/process';
import { CosignCommand, probeFlagSet } from './cosign';
import { AdmittingSignature, TOOL_NAME, cacheRoot, publishToCache, readHint, removeCacheEntry, storedSignatures } from './installer/cache';
import { Download, NetworkDeadline, downloadHashed, downloadRetry, fetchSmall, networkDeadline, q } from './installer/download';
import { changedSince, hashUnchanged, readUnchanged } from './installer/proven-file';
import { CosignPlatform, DEFAULT_COSIGN_VERSION, cosignPlatform, normalizeChecksum, normalizeVersion, releaseUrl, tableChecksum } from './installer/release';
import {
  COSIGN_RELEASE_IDENTITY,
  COSIGN_RELEASE_ISSUER,
  SignatureRefusal,
  TrustPolicy,
  Verified,
  checkSignatureShape,
  signatureFiles,
  trustPolicyFrom,
  verifyReleaseSignature,
} from './installer/signature';
import { agentTempDirectory } from '../platform/agent';

export { changedSince, hashUnchanged } from './installer/proven-file';
export { cosignPlatform, normalizeChecksum, normalizeVersion, releaseUrl, tableChecksum } from './installer/release';
export type { CosignPlatform } from './installer/release';
export { DEFAULT_COSIGN_VERSION };

export const DEFAULT_DOWNLOAD_BASE_URL = 'https://github.com/sigstore/cosign/releases/download';
/** The network deadline of one install (input timeoutSeconds): signature and binary, retries included. */
export const DEFAULT_TIMEOUT_SECONDS = 600;

/** The inputs of CosignInstaller@1, as its task.json declares them. */
export const INSTALLER_SETTINGS = {
  version: text(DEFAULT_COSIGN_VERSION),
  checksum: text(),
  downloadBaseUrl: text(DEFAULT_DOWNLOAD_BASE_URL),
  trustedRoot: text(),
  certificateIdentity: text(COSIGN_RELEASE_IDENTITY),
  certificateOidcIssuer: text(COSIGN_RELEASE_ISSUER),
  timeoutSeconds: int(DEFAULT_TIMEOUT_SECONDS, 1, 7200),
} as const satisfies SettingsTable;

/** An empty filePath input arrives as the sources folder (or the default working folder): that folder reads as "not given". */
function givenFile(value: string): string {
  const file = value.trim();
  if (!file) return '';
  for (const folder of [agentVariable('BUILD_SOURCESDIRECTORY'), agentVariable('SYSTEM_DEFAULTWORKINGDIRECTORY')]) {
    if (folder && path.resolve(file) === path.resolve(folder)) return '';
  }
  return file;
}

/** What to install, from the installer's inputs: the version and checksum in their grammar, the mirror an http(s) URL, a usable trust root. */
export async function installRequestFrom(values: SettingValues<typeof INSTALLER_SETTINGS>): Promise<InstallRequest> {
  return {
    version: normalizeVersion(values.version),
    checksum: normalizeChecksum(values.checksum),
    baseUrl: requireHttpUrl('downloadBaseUrl', values.downloadBaseUrl).toString(),
    platform: cosignPlatform(),
    timeoutSeconds: values.timeoutSeconds,
    trust: await trustPolicyFrom(givenFile(values.trustedRoot), values.certificateIdentity.trim(), values.certificateOidcIssuer.trim()),
  };
}

export interface InstallRequest {
  version: string;
  checksum: string;
  baseUrl: string;
  platform?: CosignPlatform;
  /** The network deadline of the whole install; DEFAULT_TIMEOUT_SECONDS when absent. */
  timeoutSeconds?: number;
  /** What a release signature is checked against (used when neither the input nor the table pins the version). */
  trust: TrustPolicy;
}

export interface InstallResult {
  cosignPath: string;
  /** The folder to put first on PATH. */
  cosignDir: string;
  version: string;
  sha256: string;
  cacheHit: boolean;
  /** The truth the binary was checked against: `table`, `checksum` or `signature:<identity>`. */
  verifiedBy: string;
}

/** The digest a binary must have, from outside the tool cache: the checksum input, else the task's table. */
interface Pin {
  input: string;
  table?: string;
}

/** One install's request, platform, pins, network deadline and logger, shared by its steps. */
interface Install {
  req: InstallRequest;
  plat: CosignPlatform;
  pin: Pin;
  net: NetworkDeadline;
  log: Logger;
}

function pinSource(pin: Pin): { expected: string; source: string; verifiedBy: string } {
  if (pin.input) return { expected: pin.input, source: "the 'checksum' input", verifiedBy: 'checksum' };
  if (pin.table) return { expected: pin.table, source: "the task's checksum table", verifiedBy: 'table' };
  return { expected: '', source: '', verifiedBy: '' };
}

/** The one line a refused signature fails with: what was wrong, and the two ways to install anyway. */
function refusal(ins: Install, reason: string): UserError {
  return new UserError(
    `cosign ${ins.req.version} was not installed: ${reason}. Nothing was cached or run. Pin this binary with the 'checksum' input (its sha256 for ${ins.plat.key}), or give the trust material it was signed with ('trustedRoot', 'certificateIdentity', 'certificateOidcIssuer').`,
  );
}

/** The first signature the release publishes for this asset, in the formats its version uses; refused when there is none. */
async function fetchSignature(ins: Install): Promise<AdmittingSignature> {
  const { req, plat } = ins;
  const tried: string[] = [];
  for (const { format, file } of signatureFiles(req.version, plat.asset, req.trust)) {
    const url = releaseUrl(req.baseUrl, req.version, file);
    const bytes = await downloadRetry(file, (s, ms) => fetchSmall(url, 'signature', s, ms), ins.net, ins.log);
    if (bytes) {
      try {
        await checkSignatureShape(format, bytes);
      } catch (err) {
        if (err instanceof SignatureRefusal) throw refusal(ins, err.message);
        throw err;
      }
      ins.log.info(`Verifying ${plat.asset} against its signature ${q(url)} (${req.trust.rootName}; identity ${q(req.trust.identity)}).`);
      return { format, bytes };
    }
    tried.push(file);
  }
  throw refusal(ins, `the mirror publishes no signature for ${plat.asset} (${tried.join(', ')} answered 404)`);
}

/**
 * The signature's verdict over the downloaded file's bytes, read again through one descriptor from the
 * file hashed as it was downloaded (same inode, size and mtime): the bundle must sign that sha256, and
 * its signature over these bytes proves they are the bytes it signs.
 */
async function verifySignedDownload(file: string, got: Download, signature: AdmittingSignature, ins: Install): Promise<string> {
  const moved = changedSince(file, got.stat);
  const read = moved ? undefined : await readUnchanged(file);
  if (!read || read.changed) {
    throw new UserError(`The downloaded cosign changed after it was downloaded (${moved || read?.changed}); nothing was cached or run.`);
  }
  try {
    return (await verifyReleaseSignature(signature.format, signature.bytes, read.bytes, got.sha256, ins.req.trust)).identity;
  } catch (err) {
    if (err instanceof SignatureRefusal) throw refusal(ins, err.message);
    throw err;
  }
}

async function runCosignVersion(binary: string, signal: AbortSignal): Promise<string> {
  const r = await runProcess(binary, ['version', '--json'], { env: childEnvironment({}), signal, cancelSignal: signal, timeoutMs: 30_000 });
  if (r.code !== 0) return '';
  try {
    return String(JSON.parse(r.stdout).gitVersion ?? '');
  } catch {
    return '';
  }
}

/**
 * Runs `cosign version --json` on a binary whose sha256 was already verified; when it reports a
 * release version, that must be the requested one (a release signed by cosign's identity but of
 * another version, served under this version's path, is refused here).
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

/** The cached binary, hashed (or read whole) through one descriptor; `altered` words the failure (the entry is removed). */
async function cachedFile<T extends { changed: string }>(bin: string, altered: (what: string) => UserError, read: (file: string) => Promise<T>): Promise<T> {
  let h: T;
  try {
    h = await read(bin);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw altered('is missing');
    throw err;
  }
  if (h.changed) throw altered(`cannot be verified (${h.changed} while it was checked)`);
  return h;
}

/** A cache hit pinned by the input or the table: the cached file's sha256 must be the pin. */
async function verifyPinnedHit(dir: string, bin: string, ins: Install, altered: (what: string) => UserError): Promise<{ sha256: string; verifiedBy: string }> {
  const { req, pin } = ins;
  const { expected, source, verifiedBy } = pinSource(pin);
  const h = await cachedFile(bin, altered, hashUnchanged);
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
  return { sha256: h.sha256, verifiedBy };
}

/**
 * A cache hit with no pin: the release signature kept in the entry is verified again over the cached
 * bytes, against the same trusted root and identity. An entry without one was admitted by a pin
 * (or by an older version of this task): it is removed and the version installed afresh (undefined).
 */
async function verifySignedHit(
  dir: string,
  bin: string,
  ins: Install,
  altered: (what: string) => UserError,
): Promise<{ sha256: string; verifiedBy: string } | undefined> {
  const { req, plat } = ins;
  const allowed = signatureFiles(req.version, plat.asset, req.trust).map((f) => f.format);
  const [signature] = storedSignatures(dir, allowed);
  if (!signature) {
    removeCacheEntry(dir);
    ins.log.info(`The cached cosign ${req.version} keeps no release signature to verify it again; installing it afresh.`);
    return undefined;
  }
  const { bytes } = await cachedFile(bin, altered, readUnchanged);
  let verified: Verified;
  try {
    verified = await verifyReleaseSignature(signature.format, signature.bytes, bytes, undefined, req.trust);
  } catch (err) {
    if (err instanceof SignatureRefusal) throw altered(`does not verify against the release signature kept with it: ${err.message}`);
    throw err;
  }
  ins.log.info(
    `Found cosign ${req.version} in the tool cache (sha256 ${verified.sha256}; its release signature verified again, signed by ${q(verified.identity)}; not run again).`,
  );
  return { sha256: verified.sha256, verifiedBy: `signature:${verified.identity}` };
}

/** A cache hit, checked against the truth that admitted it; undefined when the entry must be installed afresh. */
function verifyCacheHit(dir: string, ins: Install): Promise<{ sha256: string; verifiedBy: string } | undefined> {
  const bin = path.join(dir, ins.plat.binaryName);
  const altered = (what: string) => {
    removeCacheEntry(dir);
    return new UserError(
      `The cached cosign ${ins.req.version} at '${q(bin)}' ${what}: the agent's tool cache was altered. The cache entry was removed; re-run to download a verified copy.`,
    );
  };
  return pinSource(ins.pin).expected ? verifyPinnedHit(dir, bin, ins, altered) : verifySignedHit(dir, bin, ins, altered);
}

/** The downloaded binary checked against its pin or its release signature; returns verifiedBy. */
async function checkDownload(tmp: string, url: string, got: Download, signature: AdmittingSignature | undefined, ins: Install): Promise<string> {
  const { expected, source, verifiedBy } = pinSource(ins.pin);
  if (!signature) {
    if (got.sha256 !== expected) {
      throw new UserError(`Checksum mismatch for ${q(url)}: got sha256 ${got.sha256}, expected ${expected} from ${source}. Nothing was cached or run.`);
    }
    ins.log.info(`sha256 ${got.sha256} matches ${source}.`);
    return verifiedBy;
  }
  const identity = await verifySignedDownload(tmp, got, signature, ins);
  ins.log.info(`sha256 ${got.sha256} is signed by ${q(identity)}: the release signature verified offline against ${ins.req.trust.rootName}.`);
  ins.log.info(`To pin this install to the same binary without its signature: checksum: ${got.sha256} (${ins.plat.key}).`);
  return `signature:${identity}`;
}

/**
 * A fresh install: the signature first when nothing pins the version (none: refused before the
 * binary is fetched), then the download into a private 0700 folder, hashed as it is written; that
 * same file (checked unchanged) is the one verified, run for the version check, and cached.
 */
async function downloadAndCache(ins: Install): Promise<{ dir: string; sha256: string; verifiedBy: string }> {
  const { req, plat, net } = ins;
  const signature = pinSource(ins.pin).expected ? undefined : await fetchSignature(ins);
  const url = releaseUrl(req.baseUrl, req.version, plat.asset);
  const tempDir = fs.mkdtempSync(path.join(agentTempDirectory() || os.tmpdir(), 'cosign-dl-'));
  // Removed on every exit path, cancellation included.
  const forget = onExit(() => fs.rmSync(tempDir, { recursive: true, force: true }));
  try {
    fs.chmodSync(tempDir, 0o700);
    const tmp = path.join(tempDir, plat.binaryName);
    ins.log.info(`Downloading ${q(url)}`);
    const got = await downloadRetry(url, (s, ms) => downloadHashed(url, tmp, s, ms), net, ins.log);
    const verifiedBy = await checkDownload(tmp, url, got, signature, ins);
    // Verified: it may run now, and only a binary that passed every check is cached.
    fs.chmodSync(tmp, 0o700);
    const moved = changedSince(tmp, got.stat);
    if (moved) throw new UserError(`The downloaded cosign in '${q(tempDir)}' changed after it was verified (${moved}); nothing was cached or run.`);
    // The verified file is the one run: for its version, and for the flags Cosign@1 would probe.
    const [, flags] = await Promise.all([checkReportedVersion(tmp, ins), flagSetOf(tmp, ins)]);
    const dir = await publishToCache(tmp, { version: req.version, plat, got, flags, signature }, ins.log);
    return { dir, sha256: got.sha256, verifiedBy };
  } finally {
    fs.rmSync(tempDir, { recursive: true, force: true });
    forget();
  }
}

/** The outputs of CosignInstaller@1. */
export const INSTALLER_OUTPUTS: OutputTable<InstallResult> = {
  cosignPath: { grammar: 'own', value: (r) => r.cosignPath },
  cosignVersion: { grammar: 'own', value: (r) => r.version },
  cosignSha256: { grammar: 'sha256Hex', value: (r) => r.sha256 },
  cacheHit: { grammar: 'boolean', value: (r) => r.cacheHit },
  verifiedBy: { grammar: 'own', value: (r) => r.verifiedBy },
};

/** CosignInstaller@1: the install, its folder first on PATH (later steps run the cosign verified here), its outputs. */
export async function installerTask(req: InstallRequest, signal: AbortSignal, log: Logger): Promise<TaskRun<InstallResult>> {
  const result = await installCosign(req, signal, log);
  const how = `${result.cacheHit ? 'cache hit' : 'downloaded'}; verified by ${result.verifiedBy}`;
  return {
    outputs: INSTALLER_OUTPUTS,
    result,
    prependPath: result.cosignDir,
    closing: [{ level: 'info', text: `cosign ${result.version} ready at ${result.cosignPath} (${how}).` }],
    message: `cosign ${result.version} installed`,
  };
}

/**
 * The whole install: cache lookup (re-verified against the truth that admitted it), else download,
 * verify, cache. The caller puts `cosignDir` first on PATH, even when another cosign is there.
 */
export async function installCosign(req: InstallRequest, signal: AbortSignal, log: Logger): Promise<InstallResult> {
  const plat = req.platform ?? cosignPlatform();
  // The tool cache's folder, before tool-lib looks into it (tool-lib's own error carries a stack).
  cacheRoot();
  const pin: Pin = { input: req.checksum, table: tableChecksum(req.version, plat.key) };
  const net = networkDeadline(signal, req.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);
  const ins: Install = { req, plat, pin, net, log };
  try {
    const found = toolLib.findLocalTool(TOOL_NAME, req.version);
    const hit = found ? await verifyCacheHit(found, ins) : undefined;
    const { dir, sha256, verifiedBy } = hit && found ? { dir: found, ...hit } : await downloadAndCache(ins);
    return { cosignPath: path.join(dir, plat.binaryName), cosignDir: dir, version: req.version, sha256, cacheHit: !!hit, verifiedBy };
  } finally {
    net.clear();
  }
}

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from '../platform/errors';
import { quote, redact } from '../platform/output';
import { FailureClass } from '../platform/retry';
import { ProcessOutcome, childEnv, childEnvironment, runProcess } from '../platform/process';
import { agentEnvironment } from '../platform/agent';

/**
 * cosign as a child process: where it is, which flags this build accepts
 * (2.x and 3.x differ and both report GitVersion "devel", so flags are probed,
 * not guessed from a version string), the argv for each command, how a failed
 * run is classified, and a runner that honours per-attempt deadlines and
 * cancellation.
 */

export type CosignCommand = 'attest' | 'sign' | 'verify' | 'verify-attestation';
export const COSIGN_COMMANDS: readonly CosignCommand[] = ['attest', 'sign', 'verify', 'verify-attestation'];

export function isWriteCommand(c: CosignCommand): boolean {
  return c === 'attest' || c === 'sign';
}

// ---------------------------------------------------------------- locating

function isExecutableFile(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    if (process.platform === 'win32') return true;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `cosignPath` when given (must be an executable file), else the first cosign on PATH. */
export function findCosign(cosignPath: string, env: Readonly<Record<string, string | undefined>> = agentEnvironment()): string {
  if (cosignPath) {
    if (!isExecutableFile(cosignPath)) throw new UserError(`Input 'cosignPath': '${cosignPath}' is not an executable file.`);
    return path.resolve(cosignPath);
  }
  const names = process.platform === 'win32' ? ['cosign.exe', 'cosign'] : ['cosign'];
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const n of names) {
      const p = path.join(dir, n);
      if (isExecutableFile(p)) return p;
    }
  }
  throw new UserError("cosign was not found on PATH; add a CosignInstaller@1 step before this one or set 'cosignPath'.");
}

// ---------------------------------------------------------------- flags

/** What one cosign binary accepts, learnt from its own --help (cached per binary and command). */
export interface CommandFlags {
  /** Flags listed by `cosign <command> --help` (without the leading dashes). */
  listed: Set<string>;
  /** Hidden (deprecated) flags probed by parsing them: true when accepted. */
  probed: Map<string, boolean>;
}

export interface FlagProbe {
  flags(command: CosignCommand, signal?: AbortSignal): Promise<CommandFlags>;
  /** Whether `cosign <command> <argsWithValues> --help` parses (no "unknown flag"). */
  accepts(command: CosignCommand, flagsWithValues: string[], signal?: AbortSignal): Promise<boolean>;
}

export function parseHelpFlags(help: string): Set<string> {
  const out = new Set<string>();
  const start = help.search(/^Flags:/m);
  const text = start >= 0 ? help.slice(start) : help;
  const re = /^\s+(?:-\w,\s+)?--([a-z0-9][a-z0-9-]*)/gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out.add(m[1]);
  return out;
}

const probeCache = new Map<string, Promise<unknown>>();

function cacheKey(binary: string): string {
  try {
    const real = fs.realpathSync(binary);
    const st = fs.statSync(real);
    return `${real}|${st.size}|${st.mtimeMs}|${st.ino}`;
  } catch {
    return binary;
  }
}

function cached<T>(key: string, make: () => Promise<T>): Promise<T> {
  let p = probeCache.get(key) as Promise<T> | undefined;
  if (!p) {
    p = make();
    probeCache.set(key, p);
    p.catch(() => probeCache.delete(key));
  }
  return p;
}

/**
 * Probe results survive the process in a small JSON file (the agent's tool
 * folder, else the OS temp folder), keyed by the binary's real path, size,
 * mtime and inode: the same binary always parses the same flags, and a
 * replaced binary gets a new key. Losing or corrupting the file only costs
 * a re-probe.
 */
type DiskCache = Record<string, Record<string, string[] | boolean>>;

export function flagCacheFile(env: Readonly<Record<string, string | undefined>> = agentEnvironment()): string {
  const root = env['AGENT_TOOLSDIRECTORY'] || os.tmpdir();
  const user = typeof process.getuid === 'function' ? `-${process.getuid()}` : '';
  return path.join(root, '_cosign-gc-guard', `cosign-flags${user}.json`);
}

function readDiskCache(file: string): DiskCache {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as DiskCache) : {};
  } catch {
    return {};
  }
}

function writeDiskCache(file: string, binaryKey: string, entry: string, value: string[] | boolean): void {
  // The file outlives the task and is shared by every job on the agent: an entry (a probe's flags
  // with their values) that holds any secret this task knows is probed again next time instead.
  if (redact(entry) !== entry) return;
  try {
    const all = readDiskCache(file);
    // Keep the file small: entries of binaries that no longer exist are dropped.
    for (const k of Object.keys(all)) if (!fs.existsSync(k.split('|')[0])) delete all[k];
    all[binaryKey] = { ...(all[binaryKey] ?? {}), [entry]: value };
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(all));
    fs.renameSync(tmp, file);
  } catch {
    /* a cache that cannot be written is only slower */
  }
}

/**
 * The flags an installed cosign lists, recorded beside it by CosignInstaller@1 from the same
 * verified file it ran, so that Cosign@1 needs no `--help` probes on the common path. The record
 * names the binary's size, mtime and inode: a file changed or replaced since never matches (hashing
 * 87 MB again would cost more than the probes). A record that is missing, unreadable, too large or
 * out of shape only costs the probes.
 */
export const FLAG_RECORD_FILE = 'cosign-flags.json';
const FLAG_RECORD_MAX_BYTES = 256 * 1024;
const FLAG_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

interface FlagRecord {
  identity: string;
  flags: Partial<Record<CosignCommand, string[]>>;
}

/** size|mtime|inode of the file itself (after links): what a change to it always changes. */
export function fileIdentity(file: string): string | undefined {
  try {
    const st = fs.statSync(file);
    return `${st.size}|${st.mtimeMs}|${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Runs `<command> --help` for every recorded command, in parallel; the flags each lists. */
export async function probeFlagSet(binary: string, signal?: AbortSignal): Promise<Record<CosignCommand, string[]>> {
  const env = childEnvironment({});
  const lists = await Promise.all(
    COSIGN_COMMANDS.map(async (command) => {
      const r = await runProcess(binary, [command, '--help'], { env, signal, cancelSignal: signal, timeoutMs: 15_000 });
      if (r.code !== 0) throw new UserError(`'${binary} ${command} --help' failed (exit ${r.code}): is this cosign?`);
      return [command, [...parseHelpFlags(r.stdout + '\n' + r.stderr)]] as const;
    }),
  );
  return Object.fromEntries(lists) as Record<CosignCommand, string[]>;
}

/** Writes the record beside `binary` (atomically: a reader sees the old record or the new one). */
export function writeFlagRecord(binary: string, flags: Record<CosignCommand, string[]>): void {
  const identity = fileIdentity(binary);
  if (!identity) return;
  const file = path.join(path.dirname(binary), FLAG_RECORD_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ identity, flags } satisfies FlagRecord), { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** The flags the record beside `binary` lists for `command`, when the record is for this very file. */
export function recordedFlags(binary: string, command: CosignCommand): Set<string> | undefined {
  try {
    const real = fs.realpathSync(binary);
    const file = path.join(path.dirname(real), FLAG_RECORD_FILE);
    if (fs.statSync(file).size > FLAG_RECORD_MAX_BYTES) return undefined;
    const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<FlagRecord> | null;
    if (!rec || typeof rec !== 'object' || rec.identity !== fileIdentity(real)) return undefined;
    const list = rec.flags?.[command];
    if (!Array.isArray(list) || list.length > 1000 || !list.every((f) => typeof f === 'string' && FLAG_NAME.test(f))) return undefined;
    return new Set(list);
  } catch {
    return undefined;
  }
}

export function binaryFlagProbe(
  binary: string,
  env: Readonly<Record<string, string | undefined>> = agentEnvironment(),
  options: { diskCache?: boolean } = {},
): FlagProbe {
  const key = cacheKey(binary);
  const probeEnv = childEnv(env, {});
  const file = options.diskCache === false ? undefined : flagCacheFile(env);
  const fromDisk = (entry: string): string[] | boolean | undefined => (file ? readDiskCache(file)[key]?.[entry] : undefined);
  return {
    flags: (command, signal) =>
      cached(`${key}|${command}|help`, async () => {
        const recorded = recordedFlags(binary, command);
        if (recorded) return { listed: recorded, probed: new Map<string, boolean>() };
        const entry = `${command}|help`;
        const hit = fromDisk(entry);
        if (Array.isArray(hit)) return { listed: new Set(hit), probed: new Map<string, boolean>() };
        const r = await runProcess(binary, [command, '--help'], { env: probeEnv, signal, timeoutMs: 15_000 });
        if (r.code !== 0) throw new UserError(`'${binary} ${command} --help' failed (exit ${r.code}): is this cosign?`);
        const listed = parseHelpFlags(r.stdout + '\n' + r.stderr);
        if (file) writeDiskCache(file, key, entry, [...listed]);
        return { listed, probed: new Map<string, boolean>() };
      }),
    accepts: (command, flagsWithValues, signal) =>
      cached(`${key}|${command}|accepts|${flagsWithValues.join(' ')}`, async () => {
        const entry = `${command}|accepts|${flagsWithValues.join(' ')}`;
        const hit = fromDisk(entry);
        if (typeof hit === 'boolean') return hit;
        const r = await runProcess(binary, [command, ...flagsWithValues, '--help'], { env: probeEnv, signal, timeoutMs: 15_000 });
        const ok = r.code === 0 && !/unknown (shorthand )?flag/i.test(r.stderr + r.stdout);
        if (file) writeDiskCache(file, key, entry, ok);
        return ok;
      }),
  };
}

/** What the wrapper asks of cosign, independent of its version. */
export interface CosignOptions {
  command: CosignCommand;
  key?: string;
  publicKey?: string;
  predicate?: string;
  predicateType: string;
  annotations: string[];
  tlogUpload: boolean;
  rekorUrl?: string;
  allowHttpRegistry: boolean;
  allowInsecureRegistry: boolean;
  /** Extra arguments from the user, already split. */
  extraArgs: string[];
  /** cosign's own --timeout (default 3m), aligned with the attempt deadline. */
  timeoutSeconds?: number;
}

export interface FlagPlan {
  /** Arguments before the image reference(s). */
  args: string[];
  /** Notes for the log about which variant was chosen. */
  notes: string[];
}

/**
 * The argv for one command on this cosign (without the image). Exported so
 * the choice per cosign generation can be unit tested with canned help text.
 */
export async function planFlags(opts: CosignOptions, probe: FlagProbe, signal?: AbortSignal): Promise<FlagPlan> {
  const { command } = opts;
  const flags = await probe.flags(command, signal);
  const has = (f: string) => flags.listed.has(f);
  const args: string[] = [];
  const notes: string[] = [];
  const signingConfig = has('use-signing-config');
  if (isWriteCommand(command)) {
    args.push('--yes', `--key=${opts.key}`);
    if (command === 'attest') args.push(`--predicate=${opts.predicate}`, `--type=${opts.predicateType}`);
    for (const a of opts.annotations) args.push(`--annotations=${a}`);
    const tlogFlags: string[] = [];
    if (!opts.tlogUpload || opts.rekorUrl) {
      // cosign 3.x: --tlog-upload/--rekor-url only work without the signing config.
      if (signingConfig) tlogFlags.push('--use-signing-config=false');
      if (!opts.tlogUpload) tlogFlags.push('--tlog-upload=false');
      if (opts.rekorUrl) tlogFlags.push(`--rekor-url=${opts.rekorUrl}`);
      const visible = tlogFlags.every((f) => has(f.slice(2).split('=')[0]));
      if (!visible && !(await probe.accepts(command, tlogFlags, signal))) {
        throw new UserError(
          `This cosign does not accept ${tlogFlags.join(' ')} for '${command}'` +
            `${opts.tlogUpload ? '' : "; set tlogUpload to 'true' or use a cosign that can skip the transparency log"}.`,
        );
      }
      notes.push(
        signingConfig
          ? `cosign with signing-config support (3.x flag set): ${tlogFlags.join(' ')}`
          : `cosign without signing-config support (2.x flag set): ${tlogFlags.join(' ')}`,
      );
    } else {
      notes.push(`transparency log upload: cosign defaults (${signingConfig ? '3.x' : '2.x'} flag set)`);
    }
    args.push(...tlogFlags);
  } else {
    args.push(`--key=${opts.publicKey}`);
    if (command === 'verify-attestation') args.push(`--type=${opts.predicateType}`);
    for (const a of opts.annotations) args.push(`--annotations=${a}`);
    if (!opts.tlogUpload) {
      if (has('insecure-ignore-tlog')) args.push('--insecure-ignore-tlog=true');
      else if (await probe.accepts(command, ['--insecure-ignore-tlog=true'], signal)) args.push('--insecure-ignore-tlog=true');
      notes.push('verifying without the transparency log (--insecure-ignore-tlog)');
    } else if (opts.rekorUrl) {
      if (has('rekor-url') || (await probe.accepts(command, [`--rekor-url=${opts.rekorUrl}`], signal))) args.push(`--rekor-url=${opts.rekorUrl}`);
      else notes.push(`this cosign's ${command} takes the transparency log from its trusted root; rekorUrl not passed`);
    }
  }
  if (opts.timeoutSeconds) args.push(`--timeout=${opts.timeoutSeconds}s`);
  if (opts.allowHttpRegistry) args.push('--allow-http-registry=true');
  if (opts.allowInsecureRegistry) args.push('--allow-insecure-registry=true');
  args.push(...opts.extraArgs);
  return { args, notes };
}

/** Splits the `arguments` input like a shell would for quotes and backslashes (no expansion). */
export function splitArguments(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === '\\')) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inToken = true;
    } else if (/\s/.test(ch)) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inToken = true;
    } else {
      cur += ch;
      inToken = true;
    }
  }
  if (quote) throw new UserError(`Input 'arguments' has an unclosed ${quote} quote.`);
  if (inToken) out.push(cur);
  return out;
}

// ---------------------------------------------------------------- classification

/** What one cosign run ended with. */
export type CosignOutcome = ProcessOutcome;

/** A failed cosign run; the message is cosign's own last error line. */
export class CosignFailure extends Error {
  constructor(
    readonly outcome: CosignOutcome,
    readonly command: string,
  ) {
    super(summarizeStderr(outcome));
    this.name = 'CosignFailure';
  }
}

export function summarizeStderr(o: Pick<CosignOutcome, 'stderr' | 'code' | 'timedOut' | 'signal'>): string {
  if (o.timedOut) return 'the attempt timed out (attemptTimeoutSeconds) and cosign was stopped';
  const lines = o.stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const err = [...lines].reverse().find((l) => /^error|^Error:|error during command execution/i.test(l)) ?? lines[lines.length - 1];
  const text = (err ?? `cosign exited with ${o.code ?? o.signal}`).replace(/^error during command execution:\s*/i, '');
  return quote(text, 400);
}

export interface ClassifyContext {
  /** A DigitalOcean connection is available and the guard is on: a 401 goes back to the guard. */
  reguardOn401: boolean;
  command: CosignCommand;
}

/**
 * What one failed cosign run means. The order matters: specific causes come
 * before the generic status codes they contain (a Rekor 404 is not a missing
 * manifest; "decrypt" means the password before "reading key" means the file).
 */
export function classifyCosignFailure(o: Pick<CosignOutcome, 'stderr' | 'code' | 'timedOut'>, ctx: ClassifyContext): FailureClass {
  if (o.timedOut) return { kind: 'transient', reason: 'attempt-timeout' };
  // Only cosign's error lines: progress lines ("Using payload from: predicate.json") would mislead.
  const errorLines = o.stderr.split(/\r?\n/).filter((l) => /\berror\b|\bfailed\b|unknown (shorthand )?flag/i.test(l));
  const e = errorLines.length > 0 ? errorLines.join('\n') : o.stderr;
  const permanent = (reason: string, hint: string): FailureClass => ({ kind: 'permanent', reason, hint });
  if (/unknown (shorthand )?flag/i.test(e)) {
    return permanent('unknown-flag', "this cosign does not accept a flag; check 'arguments' against the cosign version in use");
  }
  // cobra's usage errors: the same argv fails the same way on every attempt.
  if (/unknown command "|accepts \d+ arg\(s\)|requires at least \d+ arg\(s\)|flag needs an argument|invalid argument ".*" for ".*" flag/i.test(e)) {
    return permanent('usage', "cosign refused its command line; check 'arguments' against the cosign version in use");
  }
  if (/inappropriate ioctl for device|enter password for private key/i.test(e)) {
    return permanent('key-password-required', "the key is encrypted: set 'keyPassword'");
  }
  if (/decrypt|incorrect password|encrypted cosign private key|decryption failed|wrong password/i.test(e)) {
    return permanent('wrong-key-password', "the key could not be decrypted: check 'keyPassword' matches the key");
  }
  if (/reading key: open .*no such file|no such file or directory.*\.(key|pub)\b|key file.*not found/i.test(e)) {
    return permanent('missing-key', "the key file does not exist on the agent: check 'key'/'publicKey'");
  }
  if (/invalid pem block|reading key|loading (public )?key|unsupported pem type|parsing (private|public) key|unsupported key type|not a valid .*key/i.test(e)) {
    return permanent('bad-key', 'the key could not be read: check it is a cosign key file or a reachable KMS URI');
  }
  if (/predicate: |invalid predicate|required field \S+ missing|looking for beginning of value|cannot unmarshal/i.test(e) && isWriteCommand(ctx.command)) {
    return permanent('invalid-predicate', `the predicate is not valid for --type; check 'predicate' and 'predicateType'`);
  }
  if (/getLogEntryByUuidNotFound|\/api\/v1\/log\/entries.*404/i.test(e)) return { kind: 'transient', reason: 'rekor-404' };
  if (/MANIFEST_UNKNOWN|manifest unknown|manifests\/sha256:[a-f0-9]+: unexpected status code 404/i.test(e)) {
    return permanent('manifest-unknown', 'the registry has no manifest with that digest in this repository (pushed elsewhere, or deleted by GC?)');
  }
  if (/\bDENIED\b|requested access to the resource is denied|cannot be updated due to immutability|unexpected status code 403/i.test(e)) {
    return permanent('denied', 'the registry refused the write: check push permission on the repository and tag immutability settings');
  }
  if (/\b401\b|UNAUTHORIZED|Unable to authenticate you/i.test(e)) {
    return ctx.reguardOn401
      ? { kind: 'reguard', reason: 'registry-401', hint: 'token exchange refused; a registry garbage collection may be running' }
      : { kind: 'transient', reason: 'registry-401' };
  }
  if (/\b429\b|too many requests|TOOMANYREQUESTS|rate limit/i.test(e)) return { kind: 'transient', reason: 'rate-limited' };
  if (/status code 5\d\d|\b5\d\d (Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout)|\[5\d\d\]/i.test(e)) {
    return { kind: 'transient', reason: 'server-5xx' };
  }
  if (/context deadline exceeded|timeout|timed out/i.test(e)) return { kind: 'transient', reason: 'timeout' };
  if (/connection reset|broken pipe|connection refused|\bEOF\b|no such host|network is unreachable|TLS handshake/i.test(e)) {
    return { kind: 'transient', reason: 'network' };
  }
  if (
    !isWriteCommand(ctx.command) &&
    /no signatures found|no matching (signatures|attestations)|none of the attestations matched|signature mismatch|invalid signature/i.test(e)
  ) {
    return permanent('not-verified', 'no signature/attestation verifies with the given public key');
  }
  return { kind: 'transient', reason: 'unknown' };
}

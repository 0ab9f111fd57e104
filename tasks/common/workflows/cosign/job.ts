import { UserError, errorMessage } from '../../platform/errors';
import {
  CosignCommand,
  CosignFailure,
  CosignOptions,
  CosignOutcome,
  FlagPlan,
  binaryFlagProbe,
  classifyCosignFailure,
  findCosign,
  isWriteCommand,
  planFlags,
} from '../../tools/cosign';
import { childEnv, runProcess } from '../../platform/process';
import {
  DockerAuths,
  DockerConfigHandle,
  agentDockerConfig,
  authsForConnection,
  issuedDockerAuths,
  writePrivateDockerConfig,
} from '../../services/credentials';
import { DigitalOceanClient } from '../../services/digitalocean';
import { GuardResult, waitForGuard } from '../guard';
import { ResolvedImage, classifyRegistryFailure, repoName, resolveImage } from '../../services/oci';
import { AttemptReport, RetryError, linkedDeadline, withRetry } from '../../platform/retry';
import { CancelledError } from '../../platform/errors';
import { Logger, quote } from '../../platform/output';
import { TimelineClient, readTimelineClient } from '../../services/timeline';
import { formatDuration } from '../../platform/task';
import { CosignTaskSettings } from './settings';

/** One manifest cosign runs on: an input image, or a platform manifest of an index (recursive). */
export interface Target {
  /** Index of the input image this target belongs to. */
  image: number;
  pinned: string;
  label: string;
  platform?: string;
  skipped: boolean;
  attempts: number;
  status: 'pending' | 'skipped' | 'written' | 'verified';
}

export interface ImageResult {
  input: string;
  pinned: string;
  digest: string;
  mediaType: string;
  platforms: number;
}

export interface JobResult {
  images: ImageResult[];
  targets: Target[];
  attempts: number;
  gcWaitSeconds: number;
  durationSeconds: number;
  skipped: boolean;
  cosign: string;
  notes: string[];
}

const SIGN_TYPES = ['cosign container image signature', 'https://sigstore.dev/cosign/sign/v1'];

function verifyCommandFor(command: CosignCommand): CosignCommand {
  if (command === 'attest') return 'verify-attestation';
  if (command === 'sign') return 'verify';
  return command;
}

/** cosign verify (3.x) also lists attestation bundles: a signature must be one of the signing payload types. */
export function hasSignaturePayload(stdout: string): boolean {
  const start = stdout.indexOf('[');
  if (start < 0) return false;
  try {
    const items = JSON.parse(stdout.slice(start)) as Array<{ critical?: { type?: string } }>;
    return items.some((i) => SIGN_TYPES.includes(i?.critical?.type ?? ''));
  } catch {
    return false;
  }
}

function secondsSince(t: number): number {
  return Math.round((Date.now() - t) / 100) / 10;
}

/** What is known so far, for outputs on a failed run too. */
export interface JobProgress {
  attempts: number;
  gcWaitSeconds: number;
}

/** What every phase of one Cosign@1 run shares. */
interface CosignRun {
  s: CosignTaskSettings;
  log: Logger;
  signal: AbortSignal;
  progress: JobProgress;
  binary: string;
  write: boolean;
  verifyCommand: CosignCommand;
  notes: string[];
  /** Waits for the GC guard (undefined when the guard is off or has nothing to guard). */
  guard?: (why: string) => Promise<GuardResult>;
  /** A registry 401 goes back to the guard (a DigitalOcean connection is there to ask). */
  reguardOn401: boolean;
  gcWaitSeconds: number;
}

/** cosign's flags for the command and, when a check or verification will run, for its verify command. */
function planCommands(run: CosignRun): Promise<[FlagPlan, FlagPlan | undefined]> {
  const { s } = run;
  const probe = binaryFlagProbe(run.binary);
  const base: Omit<CosignOptions, 'command'> = {
    key: s.key,
    publicKey: s.publicKey,
    predicate: s.predicate,
    predicateType: s.predicateType,
    annotations: s.annotations,
    tlogUpload: s.tlogUpload,
    rekorUrl: s.rekorUrl || undefined,
    allowHttpRegistry: s.allowHttpRegistry,
    allowInsecureRegistry: s.allowInsecureRegistry,
    extraArgs: s.extraArgs,
    timeoutSeconds: s.budget.attemptTimeoutSeconds,
  };
  const wantVerify = run.write && !!s.publicKey && (s.skipIfPresent || s.verifyAfter);
  const plans = Promise.all([
    planFlags({ ...base, command: s.command }, probe, run.signal),
    wantVerify ? planFlags({ ...base, command: run.verifyCommand, extraArgs: [] }, probe, run.signal) : Promise.resolve(undefined),
  ]);
  plans.catch(() => undefined);
  return plans;
}

/** The GC guard for a write, when a DigitalOcean connection or stages give it something to guard. */
function guardFor(run: CosignRun, doClient: DigitalOceanClient | undefined): CosignRun['guard'] {
  const { s } = run;
  if (!(run.write && s.gcGuard && (!!doClient || s.guard.stages.length > 0))) {
    if (!run.write && s.gcGuard && (doClient || s.guard.stages.length > 0))
      run.notes.push(`'${s.command}' only reads the registry: the GC guard is not needed`);
    return undefined;
  }
  const timeline: TimelineClient | undefined = s.guard.stages.length > 0 ? readTimelineClient(true, { log: run.log.info }) : undefined;
  return async (why) => {
    run.log.info(
      `GC guard (${why}): waiting until no garbage collection is active${s.guard.stages.length ? ` and stages ${s.guard.stages.join(', ')} completed` : ''}...`,
    );
    const g = await waitForGuard({ client: doClient, timeline, log: run.log, currentStage: process.env['SYSTEM_STAGENAME'] }, s.guard, run.signal);
    run.gcWaitSeconds += g.gcWaitSeconds;
    run.progress.gcWaitSeconds = Math.round(run.gcWaitSeconds);
    run.log.info(`GC guard: ${g.message}`);
    if (g.timedOut) throw new UserError(`GC guard timed out after ${formatDuration(s.guard.timeoutSeconds)} (guardTimeoutMinutes): ${g.message}`);
    return g;
  };
}

/** Registry credentials for cosign: a private DOCKER_CONFIG (a connection, or DigitalOcean's short-lived ones), else the agent's. */
async function registryCredentials(run: CosignRun): Promise<DockerConfigHandle> {
  const { s } = run;
  if (s.registryConnection) return writePrivateDockerConfig(authsForConnection(s.registryConnection), 'dockerRegistryConnection');
  if (!s.useDigitalOceanCredentials || !s.doConnection) return agentDockerConfig();
  const expirySeconds = Math.min(86_400, s.guard.timeoutSeconds + s.budget.totalTimeoutSeconds + 900);
  // The calls Cosign@1 makes for itself follow its own retry budget: a user who allows two attempts
  // gets two here too. (The guard's polling keeps the client's default budget: it rides out 429s.)
  const credentialsClient = new DigitalOceanClient(s.doConnection, {
    log: run.log.debug,
    maxAttempts: s.budget.maxAttempts,
    initialBackoffSeconds: s.budget.initialBackoffSeconds,
    maxBackoffSeconds: s.budget.maxBackoffSeconds,
    requestTimeoutMs: Math.min(30_000, s.budget.attemptTimeoutSeconds * 1000),
    callTimeoutSeconds: s.budget.totalTimeoutSeconds,
  });
  const options = { readWrite: run.write, expirySeconds };
  const c = await digitalOceanAuths(credentialsClient, s.guard.registry, options, s.budget.totalTimeoutSeconds * 1000, run.signal);
  const creds = writePrivateDockerConfig(c.auths, 'digitalocean');
  run.log.info(
    `Registry credentials: short-lived ${run.write ? 'read-write' : 'read-only'} DigitalOcean credentials for ${c.registry} (expire in ${formatDuration(expirySeconds)}).`,
  );
  return creds;
}

/** The registry's own digest of each image: never one computed locally, never manifests[0] of an index. */
async function resolveImages(run: CosignRun, creds: DockerConfigHandle): Promise<{ images: ImageResult[]; resolved: Array<ResolvedImage | undefined> }> {
  const { s, signal } = run;
  const images: ImageResult[] = [];
  const resolved: Array<ResolvedImage | undefined> = [];
  for (const ref of s.images) {
    if (!s.resolveDigest) {
      const pinned = ref.digest ? `${repoName(ref)}@${ref.digest}` : ref.original;
      if (!ref.digest) run.log.warn(`resolveDigest is false: cosign runs on the tag ${ref.original}, which may move.`);
      // Not asked of the registry: the fixed, valid placeholder for "unknown" (RFC 2046), never a guess.
      images.push({ input: ref.original, pinned, digest: ref.digest ?? '', mediaType: UNRESOLVED_MEDIA_TYPE, platforms: 0 });
      resolved.push(undefined);
      continue;
    }
    const resolveOnce = (attemptSignal: AbortSignal) =>
      resolveImage(ref, {
        credentials: creds.lookup,
        allowHttp: s.allowHttpRegistry,
        allowInsecure: s.allowInsecureRegistry,
        timeoutMs: Math.min(30_000, s.budget.attemptTimeoutSeconds * 1000),
        signal: attemptSignal,
        cancelSignal: signal,
        log: run.log.info,
      });
    const { value } = await withRetry((_n, attemptSignal) => resolveOnce(attemptSignal), {
      budget: s.budget,
      signal,
      classify: classifyRegistryFailure,
      onFailure: (r) => logAttempt(run.log.info, 'digest resolution', r),
      giveUp: (failed) => new UserError(`Resolving ${ref.original} failed ${failureSummary(failed)}`),
    });
    resolved.push(value);
    images.push({ input: ref.original, pinned: value.pinned, digest: value.digest, mediaType: value.mediaType, platforms: value.platforms.length });
  }
  return { images, resolved };
}

/** One target per image, plus one per platform manifest of an index with `recursive`. */
function planTargets(run: CosignRun, images: ImageResult[], resolved: Array<ResolvedImage | undefined>): Target[] {
  const targets: Target[] = [];
  const pending = { skipped: false, attempts: 0, status: 'pending' as const };
  images.forEach((img, i) => {
    targets.push({ image: i, pinned: img.pinned, label: img.input, ...pending });
    const r = resolved[i];
    if (!run.s.recursive || !r?.isIndex) return;
    for (const p of r.platforms) {
      targets.push({ image: i, pinned: `${repoName(r.ref)}@${p.digest}`, label: `${img.input} [${p.platform}]`, platform: p.platform, ...pending });
    }
  });
  if (run.s.recursive && !resolved.some((r) => r?.isIndex)) run.notes.push('recursive: no image is an index; nothing more to do');
  return targets;
}

/** Runs cosign on targets: one command retried within the budget, and the single skipIfPresent check. */
interface CosignRunner {
  withRetry(command: CosignCommand, args: string[], target: Target, quiet: boolean): Promise<{ outcome: CosignOutcome; attempts: number }>;
  alreadyPresent(target: Target, verifyPlan: FlagPlan): Promise<boolean>;
}

function cosignRunner(run: CosignRun, creds: DockerConfigHandle): CosignRunner {
  const { s, signal, binary } = run;
  const env = childEnv(process.env, { ...creds.env, COSIGN_PASSWORD: s.keyPassword });
  const onLine = (line: string, stream: 'stdout' | 'stderr') => {
    if (line.trim() === '') return;
    run.log.info(`  [cosign] ${stream === 'stdout' ? quote(line, 300) : line}`);
  };
  const attemptOnce = async (command: CosignCommand, args: string[], target: Target, attempt: number, attemptSignal: AbortSignal, quiet: boolean) => {
    run.log.info(`${command} ${target.pinned}: attempt ${attempt}/${s.budget.maxAttempts}`);
    const o = await runProcess(binary, cosignArgv(command, args, target.pinned), {
      env,
      signal: attemptSignal,
      cancelSignal: signal,
      timeoutMs: s.budget.attemptTimeoutSeconds * 1000,
      onLine: quiet ? undefined : onLine,
    });
    if (o.code !== 0 || o.timedOut) throw new CosignFailure(o, command);
    return o;
  };
  return {
    async withRetry(command, args, target, quiet) {
      const { value, attempts } = await withRetry((attempt, attemptSignal) => attemptOnce(command, args, target, attempt, attemptSignal, quiet), {
        budget: s.budget,
        signal,
        classify: (err) =>
          err instanceof CosignFailure
            ? classifyCosignFailure(err.outcome, { reguardOn401: run.reguardOn401, command })
            : { kind: 'transient', reason: 'unknown' },
        onFailure: (r) => {
          if (quiet && r.error instanceof CosignFailure) for (const l of r.error.outcome.stderr.split(/\r?\n/)) if (l.trim()) onLine(l, 'stderr');
          logAttempt(run.log.info, `${command} ${target.label}`, r);
        },
        beforeReguard: run.reguardOn401 && run.guard ? async () => void (await run.guard!('401 from the registry token exchange')) : undefined,
        giveUp: (failed) => {
          target.attempts = Math.max(target.attempts, failed.attempts);
          run.progress.attempts = Math.max(run.progress.attempts, failed.attempts);
          return new UserError(`cosign ${command} failed for ${target.pinned} ${failureSummary(failed)}`);
        },
      });
      return { outcome: value, attempts };
    },
    async alreadyPresent(target, verifyPlan) {
      const o = await runProcess(binary, cosignArgv(run.verifyCommand, verifyPlan.args, target.pinned), {
        env,
        signal,
        cancelSignal: signal,
        timeoutMs: s.budget.attemptTimeoutSeconds * 1000,
      });
      if (o.code !== 0) {
        run.log.debug(`skipIfPresent: ${run.verifyCommand} ${target.pinned} exited ${o.code}: ${o.stderr.trim().split('\n').pop() ?? ''}`);
        return false;
      }
      return run.verifyCommand === 'verify' ? hasSignaturePayload(o.stdout) : true;
    },
  };
}

/** skipIfPresent: a re-run does not repeat finished work (one read-only check per target). */
async function skipPresent(run: CosignRun, runner: CosignRunner, targets: Target[], verifyPlan: FlagPlan | undefined): Promise<void> {
  const { s } = run;
  if (!s.skipIfPresent) return;
  if (!verifyPlan) {
    run.notes.push('skipIfPresent needs publicKey: not checked');
    return;
  }
  for (const t of targets) {
    if (!(await runner.alreadyPresent(t, verifyPlan))) continue;
    t.skipped = true;
    t.status = 'skipped';
    const what = s.command === 'attest' ? `an attestation of type ${s.predicateType}` : 'a signature';
    run.log.info(`skipIfPresent: ${t.pinned} already has ${what} that verifies with the public key; skipping it.`);
  }
}

/** Runs the command on each target (after the guard, for a write); returns the most attempts one took. */
async function runOnTargets(run: CosignRun, runner: CosignRunner, plan: FlagPlan, targets: Target[]): Promise<number> {
  const { s } = run;
  let attempts = 0;
  if (run.write && targets.length > 0 && run.guard) await run.guard('before writing');
  for (const t of targets) {
    const r = await runner.withRetry(s.command, plan.args, t, false);
    if (s.command === 'verify' && !hasSignaturePayload(r.outcome.stdout)) {
      throw new UserError(`verify: ${t.pinned} has attestations but no signature that verifies with the public key.`);
    }
    t.attempts = r.attempts;
    t.status = run.write ? 'written' : 'verified';
    attempts = Math.max(attempts, r.attempts);
    run.progress.attempts = Math.max(run.progress.attempts, attempts);
    if (run.write) run.log.info(`${s.command} ${t.pinned}: done after ${r.attempts} attempt(s).`);
  }
  return attempts;
}

/** verifyAfter: what was written must verify with the public key. */
async function verifyWritten(run: CosignRun, runner: CosignRunner, verifyPlan: FlagPlan, written: Target[]): Promise<void> {
  for (const t of written) {
    let ok: boolean;
    try {
      const r = await runner.withRetry(run.verifyCommand, verifyPlan.args, t, true);
      ok = run.verifyCommand === 'verify' ? hasSignaturePayload(r.outcome.stdout) : true;
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      throw new UserError(`verifyAfter: ${t.pinned} does not verify with the public key after '${run.s.command}' reported success: ${err.message}`);
    }
    if (!ok) throw new UserError(`verifyAfter: ${t.pinned} has no signature that verifies with the public key after 'sign' reported success.`);
    t.status = 'verified';
    run.log.info(`verifyAfter: ${t.pinned} verifies.`);
  }
}

/**
 * One Cosign@1 run, in phases: flags (probed while the rest prepares), the guard, credentials,
 * the registry's digests, the targets, what is already present, the writes, their verification.
 */
export async function runCosignJob(
  s: CosignTaskSettings,
  signal: AbortSignal,
  log: Logger,
  onResolved: (images: ImageResult[]) => void = () => undefined,
  progress: JobProgress = { attempts: 0, gcWaitSeconds: 0 },
): Promise<JobResult> {
  const started = Date.now();
  const write = isWriteCommand(s.command);
  const binary = findCosign(s.cosignPath);
  const run: CosignRun = {
    s,
    log,
    signal,
    progress,
    binary,
    write,
    verifyCommand: verifyCommandFor(s.command),
    notes: [],
    reguardOn401: false,
    gcWaitSeconds: 0,
  };
  // Probing runs while credentials are prepared and digests resolved (it only reads the binary).
  const plans = planCommands(run);
  run.log.info(`cosign: ${binary}`);
  const doClient = s.doConnection ? new DigitalOceanClient(s.doConnection, { log: run.log.debug }) : undefined;
  run.guard = guardFor(run, doClient);
  run.reguardOn401 = !!run.guard && !!doClient;
  const creds = await registryCredentials(run);
  try {
    if (creds.dir) run.log.info(`Registry credentials: ${creds.source} for ${creds.hosts.join(', ')} in a private DOCKER_CONFIG (removed when the task ends).`);
    else run.log.info(`Registry credentials: ${creds.source === 'anonymous' ? 'none (anonymous)' : "the agent's docker config"}.`);
    const { images, resolved } = await resolveImages(run, creds);
    onResolved(images);
    const [plan, verifyPlan] = await plans;
    for (const n of plan.notes) run.log.info(`cosign flags: ${n}`);
    run.notes.push(...plan.notes);
    const targets = planTargets(run, images, resolved);
    const runner = cosignRunner(run, creds);
    if (write) await skipPresent(run, runner, targets, verifyPlan);
    const pending = targets.filter((t) => !t.skipped);
    const attempts = await runOnTargets(run, runner, plan, pending);
    if (write && s.verifyAfter && verifyPlan) await verifyWritten(run, runner, verifyPlan, pending);
    return {
      images,
      targets,
      attempts,
      gcWaitSeconds: Math.round(run.gcWaitSeconds),
      durationSeconds: Math.round(secondsSince(started)),
      skipped: write && targets.every((t) => t.skipped),
      cosign: binary,
      notes: run.notes,
    };
  } finally {
    creds.remove();
  }
}

/** How a give-up reads: the attempts, the failure class with its hint, and the last error. */
function failureSummary(failed: RetryError): string {
  const f = failed.failure;
  return `after ${failed.attempts} attempt(s) [${f.kind}: ${f.reason}]${f.hint ? ` (${f.hint})` : ''}: ${errorMessage(failed.lastError)}`;
}

/** What resolveDigest=false reports in mediaTypes: the registry was not asked, so "unknown" (RFC 2046). */
export const UNRESOLVED_MEDIA_TYPE = 'application/octet-stream';

/**
 * cosign's argv: flags (extra `arguments` included) first, then `--`, then the image, so nothing in
 * the image position is ever read as a flag (cosign 2.x and 3.x both accept `--`).
 */
export function cosignArgv(command: CosignCommand, flags: string[], image: string): string[] {
  return [command, ...flags, '--', image];
}

/**
 * The registry's name and short-lived credentials from DigitalOcean, bounded by totalTimeoutMinutes
 * whatever the API does; the answer is checked (and its secrets registered) before it is used.
 */
export async function digitalOceanAuths(
  client: DigitalOceanClient,
  registryName: string,
  options: { readWrite: boolean; expirySeconds: number },
  totalMs: number,
  signal: AbortSignal,
): Promise<{ registry: string; auths: DockerAuths }> {
  const deadline = linkedDeadline(signal, totalMs);
  try {
    const registry = await client.resolveRegistry(registryName, deadline.signal);
    const answer = await client.dockerCredentials(registry, options, deadline.signal);
    return { registry, auths: issuedDockerAuths(answer, 'DigitalOcean API docker-credentials') };
  } catch (err) {
    if (deadline.expired() && !signal.aborted) {
      throw new UserError(`DigitalOcean registry credentials were not obtained within totalTimeoutMinutes (${formatDuration(Math.round(totalMs / 1000))}).`);
    }
    if (err instanceof CancelledError || signal.aborted) throw new CancelledError();
    throw err;
  } finally {
    deadline.clear();
  }
}

export function logAttempt(log: (l: string) => void, what: string, r: AttemptReport): void {
  const f = r.failure;
  const msg = errorMessage(r.error).split('\n')[0];
  const next =
    r.nextWaitMs === undefined
      ? f.kind === 'permanent'
        ? `not retried${f.hint ? ` (${f.hint})` : ''}`
        : 'no attempt left in the budget'
      : `waiting ${r.nextWaitMs} ms (${(r.nextWaitMs / 1000).toFixed(1)}s) before attempt ${r.attempt + 1}${f.kind === 'reguard' ? ', then the GC guard again' : ''}`;
  log(`Attempt ${r.attempt}/${r.maxAttempts} of ${what} failed [${f.kind}: ${f.reason}]: ${msg}; ${next}.`);
}

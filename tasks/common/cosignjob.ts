import { UserError, errorMessage } from './errors';
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
} from './cosign';
import { childEnv, runProcess } from './process';
import { DockerAuths, DockerConfigHandle, agentDockerConfig, authsForConnection, issuedDockerAuths, writePrivateDockerConfig } from './credentials';
import { DigitalOceanClient } from './digitalocean';
import { GuardResult, waitForGuard } from './guard';
import { ResolvedImage, classifyRegistryFailure, repoName, resolveImage } from './oci';
import { AttemptReport, RetryError, linkedDeadline, withRetry } from './retry';
import { CancelledError } from './errors';
import { mdCell } from './output';
import { TimelineClient, readTimelineClient } from './timeline';
import { debug, formatDuration, info, warn } from './vso';
import { CosignTaskSettings } from './cosignsettings';

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

export async function runCosignJob(
  s: CosignTaskSettings,
  signal: AbortSignal,
  onResolved: (images: ImageResult[]) => void = () => undefined,
  progress: JobProgress = { attempts: 0, gcWaitSeconds: 0 },
): Promise<JobResult> {
  const started = Date.now();
  // Every line goes through the output layer, which redacts every registered secret and neutralises commands.
  const log = info;
  const write = isWriteCommand(s.command);
  const binary = findCosign(s.cosignPath);
  const notes: string[] = [];

  // --- cosign's flag set (probed once per binary and command)
  const probe = binaryFlagProbe(binary);
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
  const verifyCommand = verifyCommandFor(s.command);
  const wantVerify = write && !!s.publicKey && (s.skipIfPresent || s.verifyAfter);
  // Probing runs while credentials are prepared and digests resolved (it only reads the binary).
  const plans = Promise.all([
    planFlags({ ...base, command: s.command }, probe, signal),
    wantVerify ? planFlags({ ...base, command: verifyCommand, extraArgs: [] }, probe, signal) : Promise.resolve(undefined as FlagPlan | undefined),
  ]);
  plans.catch(() => undefined);
  log(`cosign: ${binary}`);

  // --- DigitalOcean client, guard wiring
  const doClient = s.doConnection ? new DigitalOceanClient(s.doConnection, { log: debug }) : undefined;
  const guardActive = write && s.gcGuard && (!!doClient || s.guard.stages.length > 0);
  const timeline: TimelineClient | undefined = guardActive && s.guard.stages.length > 0 ? readTimelineClient(true, { log }) : undefined;
  let gcWaitSeconds = 0;
  const guard = async (why: string): Promise<GuardResult> => {
    log(
      `GC guard (${why}): waiting until no garbage collection is active${s.guard.stages.length ? ` and stages ${s.guard.stages.join(', ')} completed` : ''}...`,
    );
    const g = await waitForGuard({ client: doClient, timeline, log, warn, currentStage: process.env['SYSTEM_STAGENAME'] }, s.guard, signal);
    gcWaitSeconds += g.gcWaitSeconds;
    progress.gcWaitSeconds = Math.round(gcWaitSeconds);
    log(`GC guard: ${g.message}`);
    if (g.timedOut) {
      throw new UserError(`GC guard timed out after ${formatDuration(s.guard.timeoutSeconds)} (guardTimeoutMinutes): ${g.message}`);
    }
    return g;
  };
  if (!write && s.gcGuard && (doClient || s.guard.stages.length > 0)) {
    notes.push(`'${s.command}' only reads the registry: the GC guard is not needed`);
  }

  // --- registry credentials in a private DOCKER_CONFIG, only for cosign
  let creds: DockerConfigHandle;
  if (s.registryConnection) {
    creds = writePrivateDockerConfig(authsForConnection(s.registryConnection), 'dockerRegistryConnection');
  } else if (s.useDigitalOceanCredentials && doClient) {
    const expirySeconds = Math.min(86_400, s.guard.timeoutSeconds + s.budget.totalTimeoutSeconds + 900);
    // The calls Cosign@1 makes for itself follow its own retry budget: a user who allows two attempts
    // gets two here too. (The guard's polling keeps the client's default budget: it rides out 429s.)
    const credentialsClient = new DigitalOceanClient(s.doConnection!, {
      log: debug,
      maxAttempts: s.budget.maxAttempts,
      initialBackoffSeconds: s.budget.initialBackoffSeconds,
      maxBackoffSeconds: s.budget.maxBackoffSeconds,
      requestTimeoutMs: Math.min(30_000, s.budget.attemptTimeoutSeconds * 1000),
      callTimeoutSeconds: s.budget.totalTimeoutSeconds,
    });
    const c = await digitalOceanAuths(credentialsClient, s.guard.registry, { readWrite: write, expirySeconds }, s.budget.totalTimeoutSeconds * 1000, signal);
    creds = writePrivateDockerConfig(c.auths, 'digitalocean');
    log(
      `Registry credentials: short-lived ${write ? 'read-write' : 'read-only'} DigitalOcean credentials for ${c.registry} (expire in ${formatDuration(expirySeconds)}).`,
    );
  } else {
    creds = agentDockerConfig();
  }

  try {
    if (creds.dir) log(`Registry credentials: ${creds.source} for ${creds.hosts.join(', ')} in a private DOCKER_CONFIG (removed when the task ends).`);
    else log(`Registry credentials: ${creds.source === 'anonymous' ? 'none (anonymous)' : "the agent's docker config"}.`);
    // --- the registry's own digests: never one computed locally, never manifests[0] of an index
    const images: ImageResult[] = [];
    const resolved: Array<ResolvedImage | undefined> = [];
    for (const ref of s.images) {
      if (!s.resolveDigest) {
        const pinned = ref.digest ? `${repoName(ref)}@${ref.digest}` : ref.original;
        if (!ref.digest) warn(`resolveDigest is false: cosign runs on the tag ${ref.original}, which may move.`);
        // Not asked of the registry: the fixed, valid placeholder for "unknown" (RFC 2046), never a guess.
        images.push({ input: ref.original, pinned, digest: ref.digest ?? '', mediaType: UNRESOLVED_MEDIA_TYPE, platforms: 0 });
        resolved.push(undefined);
        continue;
      }
      const { value } = await withRetry(
        (_n, attemptSignal) =>
          resolveImage(ref, {
            credentials: creds.lookup,
            allowHttp: s.allowHttpRegistry,
            allowInsecure: s.allowInsecureRegistry,
            timeoutMs: Math.min(30_000, s.budget.attemptTimeoutSeconds * 1000),
            signal: attemptSignal,
            cancelSignal: signal,
            log,
          }),
        {
          budget: s.budget,
          signal,
          classify: classifyRegistryFailure,
          onFailure: (r) => logAttempt(log, 'digest resolution', r),
        },
      ).catch((err) => {
        if (!(err instanceof RetryError)) throw err;
        const f = err.failure;
        throw new UserError(
          `Resolving ${ref.original} failed after ${err.attempts} attempt(s) [${f.kind}: ${f.reason}]${f.hint ? ` (${f.hint})` : ''}: ${errorMessage(err.lastError)}`,
        );
      });
      resolved.push(value);
      images.push({ input: ref.original, pinned: value.pinned, digest: value.digest, mediaType: value.mediaType, platforms: value.platforms.length });
    }

    onResolved(images);
    const [plan, verifyPlan] = await plans;
    for (const n of plan.notes) log(`cosign flags: ${n}`);
    notes.push(...plan.notes);

    const targets: Target[] = [];
    images.forEach((img, i) => {
      targets.push({ image: i, pinned: img.pinned, label: img.input, skipped: false, attempts: 0, status: 'pending' });
      const r = resolved[i];
      if (s.recursive && r?.isIndex) {
        for (const p of r.platforms) {
          targets.push({
            image: i,
            pinned: `${repoName(r.ref)}@${p.digest}`,
            label: `${img.input} [${p.platform}]`,
            platform: p.platform,
            skipped: false,
            attempts: 0,
            status: 'pending',
          });
        }
      }
    });
    if (s.recursive && !resolved.some((r) => r?.isIndex)) notes.push('recursive: no image is an index; nothing more to do');

    const env = childEnv(process.env, { ...creds.env, COSIGN_PASSWORD: s.keyPassword });
    const onLine = (line: string, stream: 'stdout' | 'stderr') => {
      if (line.trim() === '') return;
      if (stream === 'stdout' && line.length > 300) line = line.slice(0, 297) + '...';
      log(`  [cosign] ${line}`);
    };
    const reguardOn401 = guardActive && !!doClient;
    const ctxFor = (command: CosignCommand) => ({ reguardOn401, command });

    /** One cosign command on one target, retried within the budget; returns the successful outcome. */
    const runWithRetry = async (
      command: CosignCommand,
      args: string[],
      target: Target,
      quiet: boolean,
    ): Promise<{ outcome: CosignOutcome; attempts: number }> => {
      try {
        const { value, attempts } = await withRetry(
          async (attempt, attemptSignal) => {
            log(`${command} ${target.pinned}: attempt ${attempt}/${s.budget.maxAttempts}`);
            const o = await runProcess(binary, cosignArgv(command, args, target.pinned), {
              env,
              signal: attemptSignal,
              cancelSignal: signal,
              timeoutMs: s.budget.attemptTimeoutSeconds * 1000,
              onLine: quiet ? undefined : onLine,
            });
            if (o.code !== 0 || o.timedOut) throw new CosignFailure(o, command);
            return o;
          },
          {
            budget: s.budget,
            signal,
            classify: (err) => (err instanceof CosignFailure ? classifyCosignFailure(err.outcome, ctxFor(command)) : { kind: 'transient', reason: 'unknown' }),
            onFailure: (r) => {
              if (quiet && r.error instanceof CosignFailure) {
                for (const l of r.error.outcome.stderr.split(/\r?\n/)) if (l.trim()) onLine(l, 'stderr');
              }
              logAttempt(log, `${command} ${target.label}`, r);
            },
            beforeReguard: reguardOn401 ? async () => void (await guard('401 from the registry token exchange')) : undefined,
          },
        );
        return { outcome: value, attempts };
      } catch (err) {
        if (err instanceof RetryError) {
          target.attempts = Math.max(target.attempts, err.attempts);
          progress.attempts = Math.max(progress.attempts, err.attempts);
          const f = err.failure;
          throw new UserError(
            `cosign ${command} failed for ${target.pinned} after ${err.attempts} attempt(s) [${f.kind}: ${f.reason}]` +
              `${f.hint ? ` (${f.hint})` : ''}: ${errorMessage(err.lastError)}`,
          );
        }
        throw err;
      }
    };

    /** Single read-only check: does the target already carry what we would write? */
    const alreadyPresent = async (target: Target): Promise<boolean> => {
      const o = await runProcess(binary, cosignArgv(verifyCommand, verifyPlan!.args, target.pinned), {
        env,
        signal,
        cancelSignal: signal,
        timeoutMs: s.budget.attemptTimeoutSeconds * 1000,
      });
      if (o.code !== 0) {
        debug(`skipIfPresent: ${verifyCommand} ${target.pinned} exited ${o.code}: ${o.stderr.trim().split('\n').pop() ?? ''}`);
        return false;
      }
      return verifyCommand === 'verify' ? hasSignaturePayload(o.stdout) : true;
    };

    let attempts = 0;
    if (write) {
      // --- skipIfPresent: a re-run does not repeat finished work
      if (s.skipIfPresent && verifyPlan) {
        for (const t of targets) {
          if (await alreadyPresent(t)) {
            t.skipped = true;
            t.status = 'skipped';
            const what = s.command === 'attest' ? `an attestation of type ${s.predicateType}` : 'a signature';
            log(`skipIfPresent: ${t.pinned} already has ${what} that verifies with the public key; skipping it.`);
          }
        }
      } else if (s.skipIfPresent) {
        notes.push('skipIfPresent needs publicKey: not checked');
      }
      const pending = targets.filter((t) => !t.skipped);
      if (pending.length > 0) {
        if (guardActive) await guard('before writing');
        for (const t of pending) {
          const r = await runWithRetry(s.command, plan.args, t, false);
          t.attempts = r.attempts;
          t.status = 'written';
          attempts = Math.max(attempts, r.attempts);
          progress.attempts = Math.max(progress.attempts, attempts);
          log(`${s.command} ${t.pinned}: done after ${r.attempts} attempt(s).`);
        }
        // --- verifyAfter: what was written must verify with the public key
        if (s.verifyAfter && verifyPlan) {
          for (const t of pending) {
            let ok: boolean;
            try {
              const r = await runWithRetry(verifyCommand, verifyPlan.args, t, true);
              ok = verifyCommand === 'verify' ? hasSignaturePayload(r.outcome.stdout) : true;
            } catch (err) {
              if (!(err instanceof UserError)) throw err;
              throw new UserError(`verifyAfter: ${t.pinned} does not verify with the public key after '${s.command}' reported success: ${err.message}`);
            }
            if (!ok) throw new UserError(`verifyAfter: ${t.pinned} has no signature that verifies with the public key after 'sign' reported success.`);
            t.status = 'verified';
            log(`verifyAfter: ${t.pinned} verifies.`);
          }
        }
      }
    } else {
      for (const t of targets) {
        const r = await runWithRetry(s.command, plan.args, t, false);
        if (s.command === 'verify' && !hasSignaturePayload(r.outcome.stdout)) {
          throw new UserError(`verify: ${t.pinned} has attestations but no signature that verifies with the public key.`);
        }
        t.attempts = r.attempts;
        t.status = 'verified';
        attempts = Math.max(attempts, r.attempts);
        progress.attempts = Math.max(progress.attempts, attempts);
      }
    }

    return {
      images,
      targets,
      attempts,
      gcWaitSeconds: Math.round(gcWaitSeconds),
      durationSeconds: Math.round(secondsSince(started)),
      skipped: write && targets.every((t) => t.skipped),
      cosign: binary,
      notes,
    };
  } finally {
    creds.remove();
  }
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

export function summaryMarkdown(s: CosignTaskSettings, r: JobResult): string {
  const lines: string[] = [];
  lines.push(`### Cosign@1: ${s.command}${r.skipped ? ' (skipped: already present)' : ''}`, '');
  lines.push(`| image | digest | media type | platforms | attempts | result |`, `|---|---|---|---|---|---|`);
  for (const t of r.targets) {
    const img = r.images[t.image];
    const digest = t.pinned.includes('@') ? t.pinned.slice(t.pinned.indexOf('@') + 1) : '(tag)';
    const isMain = t.pinned === img.pinned;
    lines.push(
      `| ${mdCell(t.label)} | \`${digest}\` | ${isMain ? mdCell(img.mediaType) : 'platform manifest'} | ${isMain ? img.platforms || '-' : mdCell(t.platform ?? '')} | ${t.attempts} | ${t.status} |`,
    );
  }
  lines.push('', `- GC wait: ${formatDuration(r.gcWaitSeconds)}; total: ${formatDuration(r.durationSeconds)}; attempts (most for one manifest): ${r.attempts}`);
  lines.push(`- cosign: \`${r.cosign}\``);
  for (const n of r.notes) lines.push(`- ${n}`);
  return lines.join('\n') + '\n';
}

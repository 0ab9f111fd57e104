// One input image through the phases: resolve (the registry's own digest), plan its targets (its
// platform manifests too, with recursive), check what is present, then (batch.ts) write and verify.
// Each step takes a slot of the run's limiter; a failure ends this image only.
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { Logger } from '../../platform/output';
import { withRetry } from '../../platform/retry';
import { DockerConfigHandle } from '../../services/credentials';
import { ImageReference, classifyRegistryFailure, repoName, repositorySession, resolveImage } from '../../services/oci';
import { registryRequestOptions } from '../access';
import { CommandPlans, CosignRun, ImageWork, Target } from './context';
import { keyVaultWrite } from './keyvault';
import { CosignRunner, RetryPlan, failureSummary, hasSignaturePayload, logAttempt } from './runner';

/** What resolveDigest=false reports in mediaTypes: the registry was not asked, so "unknown" (RFC 2046). */
export const UNRESOLVED_MEDIA_TYPE = 'application/octet-stream';

/** A logger whose every line names the image (or manifest) it is about. */
function namedLogger(log: Logger, label: string): Logger {
  return {
    info: (line) => log.info(`[${label}] ${line}`),
    debug: (line) => log.debug(`[${label}] ${line}`),
    warn: (line) => log.warn(`[${label}] ${line}`),
    progress: (percent, text) => log.progress(percent, text),
  };
}

export function newImageWork(run: CosignRun, ref: ImageReference, index: number): ImageWork {
  return {
    index,
    ref,
    result: { input: ref.original, pinned: ref.original, digest: '', mediaType: UNRESOLVED_MEDIA_TYPE, platforms: 0 },
    targets: [],
    block: [],
    log: namedLogger(run.log, ref.original),
  };
}

/** The registry's own digest of the image: never one computed locally, never manifests[0] of an index. */
export async function resolveOne(run: CosignRun, work: ImageWork, creds: DockerConfigHandle): Promise<void> {
  const { s, signal } = run;
  const ref = work.ref;
  if (!s.resolveDigest) {
    work.result.pinned = ref.digest ? `${repoName(ref)}@${ref.digest}` : ref.original;
    work.result.digest = ref.digest ?? '';
    if (!ref.digest) work.log.warn(`resolveDigest is false: cosign runs on the tag ${ref.original}, which may move.`);
    return;
  }
  const { value } = await run.limiter.run(() =>
    withRetry(
      (_n, attemptSignal) =>
        resolveImage(ref, {
          ...registryRequestOptions(s, creds, {
            timeoutMs: Math.min(30_000, s.budget.attemptTimeoutSeconds * 1000),
            signal: attemptSignal,
            cancelSignal: signal,
            log: work.log.info,
          }),
          session: repositorySession(run.sessions, ref),
        }),
      {
        budget: s.budget,
        signal,
        classify: classifyRegistryFailure,
        // A 429's Retry-After holds every image's next registry request.
        beforeAttempt: (sig) => run.registryPause.wait(sig),
        onFailure: (r) => {
          if (r.failure.reason === 'http-429' && r.failure.waitMs !== undefined) run.registryPause.hold(r.failure.waitMs);
          logAttempt(work.log.info, 'digest resolution', r);
        },
        giveUp: (failed) => new UserError(`Resolving ${ref.original} failed ${failureSummary(failed)}`),
      },
    ),
  );
  work.resolved = value;
  work.result = { input: ref.original, pinned: value.pinned, digest: value.digest, mediaType: value.mediaType, platforms: value.platforms.length };
}

/** The image's targets: itself, and with `recursive` each platform manifest of an index. */
export function planTargets(run: CosignRun, work: ImageWork): void {
  const pending = { skipped: false, attempts: 0, status: 'pending' as const };
  const img = work.result;
  work.targets.push({ image: work.index, pinned: img.pinned, label: img.input, ...pending });
  const r = work.resolved;
  if (!run.s.recursive || !r?.isIndex) return;
  for (const p of r.platforms) {
    work.targets.push({ image: work.index, pinned: `${repoName(r.ref)}@${p.digest}`, label: `${img.input} [${p.platform}]`, platform: p.platform, ...pending });
  }
}

/** skipIfPresent: a re-run does not repeat finished work (one read-only check). */
async function alreadyPresent(run: CosignRun, runner: CosignRunner, plans: CommandPlans, work: ImageWork, t: Target): Promise<boolean> {
  if (!(await verifiesNow(run, runner, plans, work, t))) return false;
  const { s } = run;
  t.skipped = true;
  t.status = 'skipped';
  const what = s.command === 'attest' ? `an attestation of type ${s.predicateType}` : 'a signature';
  work.log.info(`skipIfPresent: ${t.pinned} already has ${what} that verifies with the public key; skipping it.`);
  return true;
}

/**
 * skipIfPresent's read-only check of a manifest (a write, with skipIfPresent and a public key):
 * whether what the command would write is there now, verifying with the public key.
 */
export async function verifiesNow(run: CosignRun, runner: CosignRunner, plans: CommandPlans, work: ImageWork, t: Target): Promise<boolean> {
  const verifyPlan = plans.verifyPlan;
  if (!run.write || !run.s.skipIfPresent || !verifyPlan) return false;
  return run.limiter.run(() => runner.alreadyPresent(work, t, verifyPlan));
}

/** verifyAfter: what was written must verify with the public key. */
async function verifyWritten(run: CosignRun, runner: CosignRunner, plans: CommandPlans, work: ImageWork, t: Target): Promise<void> {
  const verifyPlan = plans.verifyPlan!;
  let ok: boolean;
  try {
    const r = await run.limiter.run(() => runner.withRetry(work, run.verifyCommand, verifyPlan.args, t, true));
    ok = run.verifyCommand === 'verify' ? hasSignaturePayload(r.outcome.stdout) : true;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    throw new UserError(`verifyAfter: ${t.pinned} does not verify with the public key after '${run.s.command}' reported success: ${err.message}`);
  }
  if (!ok) throw new UserError(`verifyAfter: ${t.pinned} has no signature that verifies with the public key after 'sign' reported success.`);
  t.status = 'verified';
  work.log.info(`verifyAfter: ${t.pinned} verifies.`);
}

/** skipIfPresent for every manifest of the image, before any of them is written. */
export async function checkTargets(run: CosignRun, runner: CosignRunner, plans: CommandPlans, work: ImageWork): Promise<void> {
  await Promise.all(work.targets.map((t) => alreadyPresent(run, runner, plans, work, t)));
}

/** A manifest's write reported done: its status, the job's attempts, its line, then verifyAfter. */
export async function written(run: CosignRun, runner: CosignRunner, plans: CommandPlans, work: ImageWork, t: Target, attempts: number): Promise<void> {
  t.attempts = attempts;
  t.status = run.write ? 'written' : 'verified';
  run.progress.attempts = Math.max(run.progress.attempts, attempts);
  if (run.write) work.log.info(`${run.s.command} ${t.pinned}: done after ${attempts} attempt(s).`);
  if (run.write && run.s.verifyAfter && plans.verifyPlan) await verifyWritten(run, runner, plans, work, t);
}

/**
 * One manifest on its own: the guard before the first write, the command retried within the
 * budget (`plan`: what a failed batch left of it), the verification.
 */
export async function writeTarget(run: CosignRun, runner: CosignRunner, plans: CommandPlans, work: ImageWork, t: Target, plan?: RetryPlan): Promise<void> {
  const { s } = run;
  if (run.write) await run.gate.beforeFirstWrite();
  let attempts: number;
  if (run.write && run.keyVault) {
    attempts = await run.limiter.run(() => keyVaultWrite(run, runner, work, t));
  } else {
    const r = await run.limiter.run(() => runner.withRetry(work, s.command, plans.plan.args, t, false, plan));
    if (s.command === 'verify' && !hasSignaturePayload(r.outcome.stdout)) {
      throw new UserError(`verify: ${t.pinned} has attestations but no signature that verifies with the public key.`);
    }
    attempts = r.attempts;
  }
  await written(run, runner, plans, work, t, attempts);
}

/** Runs `step` on each target; a target whose step fails is marked failed with its reason (cancellation is thrown). */
export async function settleTargets<T extends { target: Target }>(items: T[], step: (item: T) => Promise<void>): Promise<void> {
  const settled = await Promise.allSettled(items.map(step));
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') return;
    if (r.reason instanceof CancelledError) throw r.reason;
    items[i].target.status = 'failed';
    items[i].target.error = errorMessage(r.reason);
  });
}

/** The block printed when an image ends: how it ended, then its own lines. */
export function printBlock(run: CosignRun, work: ImageWork, error?: unknown): void {
  const r = work.result;
  const statuses = [...new Set(work.targets.map((t) => t.status))].join(', ') || (error ? 'failed' : 'pending');
  const attempts = Math.max(0, ...work.targets.map((t) => t.attempts));
  const digest = r.digest ? `, ${r.digest}` : '';
  const why = error !== undefined && !(error instanceof CancelledError) ? `: ${errorMessage(error)}` : '';
  run.log.info(`── ${r.input}: ${error instanceof CancelledError ? 'cancelled' : statuses}${digest}, ${attempts} attempt(s)${why}`);
  for (const line of work.block) run.log.info(line);
  work.block = [];
}

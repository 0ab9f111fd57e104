// Cosign@1's job: prepare (cosign's flags, the guard, registry credentials), then every image
// through its phases at most `parallelism` at a time, then one result for all of them.
import { Limiter } from '../../platform/concurrency';
import { CancelledError, errorMessage } from '../../platform/errors';
import { Logger } from '../../platform/output';
import { DockerConfigHandle } from '../../services/credentials';
import { describeCredentials, registryCredentials } from '../access';
import { DigitalOceanClient } from '../../services/digitalocean';
import { CosignCommand, CosignOptions, binaryFlagProbe, findCosign, isWriteCommand, planFlags } from '../../tools/cosign';
import { GuardResult } from '../guard';
import { CommandPlans, CosignRun, ImageResult, ImageWork, JobProgress, JobResult } from './context';
import { GuardGate, guardWanted, writeGuard } from '../guard/gate';
import { RegistryPause } from './pause';
import { checkTargets, newImageWork, planTargets, printBlock, resolveOne } from './images';
import { imageGroups, writeGroup } from './batch';
import { CosignRunner, cosignRunner } from './runner';
import { KeyVaultSigning, prepareKeyVault } from './keyvault';
import { CosignTaskSettings } from './settings';

export { hasSignaturePayload, cosignArgv } from './runner';
export { UNRESOLVED_MEDIA_TYPE } from './images';

function verifyCommandFor(command: CosignCommand): CosignCommand {
  if (command === 'attest') return 'verify-attestation';
  if (command === 'sign') return 'verify';
  return command;
}

function secondsSince(t: number): number {
  return Math.round((Date.now() - t) / 100) / 10;
}

/** cosign's flags for the command and, when a check or verification will run, for its verify command. */
function planCommands(run: CosignRun): Promise<CommandPlans> {
  const { s } = run;
  const probe = binaryFlagProbe(run.binary);
  // With keyVaultKey, the key's public half (from Key Vault) is the public key unless one is given.
  const publicKey = s.publicKey || run.keyVault?.publicKeyFile || '';
  const base: Omit<CosignOptions, 'command'> = {
    key: s.key,
    publicKey,
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
  const wantVerify = run.write && !!publicKey && (s.skipIfPresent || s.verifyAfter);
  const plans = Promise.all([
    planFlags({ ...base, command: s.command }, probe, run.signal),
    wantVerify ? planFlags({ ...base, command: run.verifyCommand, extraArgs: [] }, probe, run.signal) : Promise.resolve(undefined),
  ]).then(([plan, verifyPlan]) => ({ plan, verifyPlan }));
  plans.catch(() => undefined);
  return plans;
}

/** What the guard's waits came to, as they end: their seconds, and a note for the summary each. */
interface GuardWaits {
  seconds: number;
  notes: string[];
}

/** The GC guard for a write, when a DigitalOcean connection or stages give it something to guard. */
function guardFor(
  s: CosignTaskSettings,
  doClient: DigitalOceanClient | undefined,
  log: Logger,
  signal: AbortSignal,
  progress: JobProgress,
  waits: GuardWaits,
): ((why: string) => Promise<GuardResult>) | undefined {
  if (!isWriteCommand(s.command) || !guardWanted(s.gcGuard, doClient, s.guard)) return undefined;
  return writeGuard({
    doClient,
    settings: s.guard,
    log,
    signal,
    onWaited: (g, why) => {
      waits.seconds += g.gcWaitSeconds;
      waits.notes.push(`GC guard (${why}): ${g.message}`);
      progress.gcWaitSeconds = Math.round(waits.seconds);
    },
  });
}

/** Registry credentials for cosign, lasting through the guard and the whole retry budget. */
function credentialsFor(run: CosignRun): Promise<DockerConfigHandle> {
  const { s } = run;
  const expirySeconds = Math.min(86_400, s.guard.timeoutSeconds + s.budget.totalTimeoutSeconds + 900);
  return registryCredentials(s, { registryName: s.guard.registry, readWrite: run.write, expirySeconds, budget: s.budget, log: run.log, signal: run.signal });
}

/** The images' outputs, once every image has its registry digest (in input order, whatever order they resolved in). */
function whenAllResolved(works: ImageWork[], onResolved: (images: ImageResult[]) => void): () => void {
  let left = works.length;
  return () => {
    if (--left === 0) onResolved(works.map((w) => w.result));
  };
}

/** One image resolved, its targets planned and checked; a failure is the image's, recorded when it ends (cancellation is thrown). */
async function prepareImage(
  run: CosignRun,
  creds: DockerConfigHandle,
  runner: CosignRunner,
  plans: Promise<CommandPlans>,
  work: ImageWork,
  resolvedOne: () => void,
): Promise<unknown> {
  try {
    await resolveOne(run, work, creds);
    resolvedOne();
    planTargets(run, work);
    await checkTargets(run, runner, await plans, work);
    return undefined;
  } catch (err) {
    if (err instanceof CancelledError || run.signal.aborted) throw err;
    return err;
  }
}

/** How the image ended: its block, and the reason of its first failed manifest (or of its resolution). */
async function finishImage(run: CosignRun, work: ImageWork, early: unknown): Promise<void> {
  const failed = work.targets.find((t) => t.error);
  const err = early ?? (failed ? new Error(failed.error) : undefined);
  printBlock(run, work, err);
  if (err === undefined) return;
  const why = failed?.error ?? errorMessage(err);
  work.result.error = /registry-401/.test(why) && run.gcHint ? `${why}. ${await run.gcHint()}` : why;
}

/**
 * With the guard off and a DigitalOcean connection given, a registry 401 may be a GC nobody waited
 * for: the DigitalOcean API is asked once, and the answer joins every such failure.
 */
function gcHintFor(s: CosignTaskSettings, doClient: DigitalOceanClient, signal: AbortSignal): () => Promise<string> {
  let answer: Promise<string> | undefined;
  return () =>
    (answer ??= (async () => {
      try {
        const registry = await doClient.resolveRegistry(s.guard.registry, signal);
        const gc = await doClient.getActiveGc(registry, signal);
        return gc
          ? `GC ${gc.uuid} is active on ${registry} ('${gc.status}'): the registry refuses writes during a garbage collection; enable gcGuard or order the stages`
          : `No GC is active on ${registry} now (checked after the failure)`;
      } catch (e) {
        if (e instanceof CancelledError || signal.aborted) throw e;
        return `Whether a GC is active could not be checked: ${errorMessage(e)}`;
      }
    })());
}

/**
 * One Cosign@1 run: cosign's flags (probed while the rest prepares), the guard, credentials, then
 * every image through resolve, plan, check, write, verify, at most `parallelism` steps at a time.
 * A failed image does not stop the others: `failures` names each one. A guard that times out ends
 * the job with its own error.
 */
export async function runCosignJob(
  s: CosignTaskSettings,
  signal: AbortSignal,
  log: Logger,
  onResolved: (images: ImageResult[]) => void = () => undefined,
  progress: JobProgress = { attempts: 0, gcWaitSeconds: 0 },
  onKeyVaultKey: (kv: KeyVaultSigning) => void = () => undefined,
): Promise<JobResult> {
  const started = Date.now();
  // The Key Vault key is read (and refused when it cannot sign) before any image is touched.
  const keyVault = s.keyVault ? await prepareKeyVault(s, log, signal) : undefined;
  if (keyVault) onKeyVaultKey(keyVault);
  try {
    const waits: GuardWaits = { seconds: 0, notes: [] };
    const run = prepareRun(s, signal, log, progress, keyVault, waits);
    return await runPrepared(run, waits, started, onResolved);
  } finally {
    keyVault?.remove();
  }
}

/** The run every phase shares, settled once before the first image and never changed after. */
function prepareRun(
  s: CosignTaskSettings,
  signal: AbortSignal,
  log: Logger,
  progress: JobProgress,
  keyVault: KeyVaultSigning | undefined,
  waits: GuardWaits,
): CosignRun {
  const write = isWriteCommand(s.command);
  const doClient = s.doConnection ? new DigitalOceanClient(s.doConnection, { log: log.debug }) : undefined;
  const guard = guardFor(s, doClient, log, signal, progress, waits);
  return Object.freeze({
    s,
    log,
    signal,
    progress,
    binary: findCosign(s.cosignPath),
    write,
    verifyCommand: verifyCommandFor(s.command),
    limiter: new Limiter(s.parallelism),
    gate: new GuardGate(guard),
    registryPause: new RegistryPause(),
    sessions: new Map(),
    reguardOn401: !!guard && !!doClient,
    gcHint: write && !guard && doClient ? gcHintFor(s, doClient, signal) : undefined,
    keyVault,
  });
}

/** The notes the summary lists, from what the phases settled (the guard's waits last, as they happened). */
function runNotes(run: CosignRun, plans: CommandPlans, works: ImageWork[], waits: GuardWaits): string[] {
  const { s } = run;
  const notes: string[] = [];
  if (!run.write && guardWanted(s.gcGuard, s.doConnection, s.guard)) notes.push(`'${s.command}' only reads the registry: the GC guard is not needed`);
  notes.push(...plans.plan.notes);
  if (run.write && s.skipIfPresent && !plans.verifyPlan) notes.push('skipIfPresent needs publicKey: not checked');
  notes.push(...waits.notes);
  if (s.recursive && !works.some((w) => w.resolved?.isIndex)) notes.push('recursive: no image is an index; nothing more to do');
  return notes;
}

async function runPrepared(run: CosignRun, waits: GuardWaits, started: number, onResolved: (images: ImageResult[]) => void): Promise<JobResult> {
  const { s } = run;
  const plans = planCommands(run);
  run.log.info(`cosign: ${run.binary}`);
  if (s.imagesFrom === 'RESOURCE_URIS') {
    run.log.info(
      `images is empty: using the ${s.images.length} image(s) this job's docker push recorded (RESOURCE_URIS): ${s.images.map((i) => i.original).join(', ')}`,
    );
  }
  const creds = await credentialsFor(run);
  try {
    describeCredentials(creds, run.log);
    // cosign's flags must be known before the first check or write; a failure there ends the job.
    for (const n of (await plans).plan.notes) run.log.info(`cosign flags: ${n}`);
    const works = s.images.map((ref, i) => newImageWork(run, ref, i));
    const resolvedOne = whenAllResolved(works, onResolved);
    // One runner (one child environment) for every image.
    const runner = cosignRunner(run, creds);
    const early = new Map<ImageWork, unknown>();
    // Each group is written as soon as its own images are resolved and checked.
    const settled = await Promise.allSettled(
      imageGroups(run, works).map(async (group) => {
        const errors = await Promise.all(group.map((w) => prepareImage(run, creds, runner, plans, w, resolvedOne)));
        group.forEach((w, i) => early.set(w, errors[i]));
        await writeGroup(
          run,
          runner,
          await plans,
          group.filter((_w, i) => errors[i] === undefined),
        );
      }),
    );
    const cancelled = settled.find((r) => r.status === 'rejected');
    if (cancelled) throw (cancelled as PromiseRejectedResult).reason;
    for (const w of works) await finishImage(run, w, early.get(w));
    if (run.gate.failure) throw run.gate.failure;
    return jobResult(run, works, started, waits, runNotes(run, await plans, works, waits));
  } finally {
    creds.remove();
  }
}

function jobResult(run: CosignRun, works: ImageWork[], started: number, waits: GuardWaits, notes: string[]): JobResult {
  const targets = works.flatMap((w) => w.targets);
  return {
    images: works.map((w) => w.result),
    targets,
    attempts: Math.max(0, ...targets.map((t) => t.attempts)),
    gcWaitSeconds: Math.round(waits.seconds),
    durationSeconds: Math.round(secondsSince(started)),
    skipped: run.write && targets.length > 0 && targets.every((t) => t.skipped),
    cosign: run.binary,
    notes,
    failures: works.filter((w) => w.result.error).map((w) => `${w.result.input}: ${w.result.error}`),
    keyVaultKey: run.keyVault ? `${run.keyVault.described} (public key sha256:${run.keyVault.fingerprint})` : undefined,
  };
}

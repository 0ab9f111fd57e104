// The write phase: the images cut into one group per worker (`parallelism`), and each group's
// manifests written in one cosign run as soon as its images are resolved and checked. cosign takes
// several references in one run and does them in turn, so a batch pays cosign's start-up (and,
// with cosign 2.x sign, the key's decryption) once instead of once per manifest. A batch is one
// attempt: when it fails, nothing in it is taken as written (cosign names no manifest it
// finished), and each of its manifests is tried again on its own with the rest of its budget; with
// skipIfPresent, one the batch wrote before it stopped is found by the same check and not written
// twice.
import { CancelledError, UserError } from '../../platform/errors';
import { CommandPlans, CosignRun, ImageWork, Target } from './context';
import { settleTargets, verifiesNow, writeTarget, written } from './images';
import { BatchOutcome, CosignRunner, RetryPlan, cosignArgv } from './runner';

/**
 * The most manifests one cosign run takes: bounds what one failure sends back to be tried one by
 * one, the argv, and the run's deadline (attemptTimeoutSeconds per manifest).
 */
export const BATCH_MAX_TARGETS = 16;

/** A manifest still to write, with the image it belongs to. */
export interface WriteItem {
  work: ImageWork;
  target: Target;
}

/**
 * `items` in input order, cut into as many batches as there are workers (more when a batch would
 * pass BATCH_MAX_TARGETS), their sizes differing by one at most.
 */
export function batchesOf<T>(items: T[], parallelism: number): T[][] {
  if (items.length === 0) return [];
  const count = Math.min(items.length, Math.max(parallelism, Math.ceil(items.length / BATCH_MAX_TARGETS)));
  const base = Math.floor(items.length / count);
  const larger = items.length % count;
  const batches: T[][] = [];
  let at = 0;
  for (let b = 0; b < count; b++) {
    const size = base + (b < larger ? 1 : 0);
    batches.push(items.slice(at, at + size));
    at += size;
  }
  return batches;
}

/**
 * cosign's flags for a batch of `n`: its own --timeout (attemptTimeoutSeconds for one manifest)
 * grows to n times that, since the run does the manifests one after another.
 */
export function batchFlags(args: string[], attemptTimeoutSeconds: number, n: number): string[] {
  const own = `--timeout=${attemptTimeoutSeconds}s`;
  const at = args.indexOf(own);
  if (at < 0) return args;
  return [...args.slice(0, at), `--timeout=${attemptTimeoutSeconds * n}s`, ...args.slice(at + 1)];
}

/**
 * The images cut into groups, one per worker: when cosign writes the manifests itself, a group's
 * images are written together (batches), each group as soon as its own images are resolved and
 * checked; otherwise (Key Vault, verify) each image is its own group.
 */
export function imageGroups(run: CosignRun, works: ImageWork[]): ImageWork[][] {
  return batchable(run) ? batchesOf(works, run.s.parallelism) : works.map((w) => [w]);
}

function batchable(run: CosignRun): boolean {
  return run.write && !run.keyVault;
}

/** Every manifest of these images still to write: together when cosign writes them itself, else one by one. */
export async function writeGroup(run: CosignRun, runner: CosignRunner, plans: CommandPlans, works: ImageWork[]): Promise<void> {
  const items: WriteItem[] = works.flatMap((work) => work.targets.filter((t) => t.status === 'pending').map((target) => ({ work, target })));
  // One worker's group is one batch, cut only where it would pass BATCH_MAX_TARGETS.
  const batches = batchable(run) ? batchesOf(items, 1) : items.map((i) => [i]);
  await Promise.all(
    batches.map((batch) =>
      batch.length === 1 ? settleTargets(batch, (i) => writeTarget(run, runner, plans, i.work, i.target)) : writeBatch(run, runner, plans, batch),
    ),
  );
}

/** The batch's block: how it ended, then cosign's own lines. */
function printBatch(run: CosignRun, batch: WriteItem[], r: BatchOutcome): void {
  const how = r.ok ? 'written' : `failed [${r.failure?.kind}: ${r.failure?.reason}]`;
  const secs = ((Date.now() - r.startedAt) / 1000).toFixed(1);
  run.log.info(`── cosign ${run.s.command}, one run for ${batch.length} manifests: ${how} in ${secs}s: ${batch.map((i) => i.target.label).join(', ')}`);
  for (const line of r.lines) run.log.info(line);
}

/** One cosign run on the batch; what it did not finish, each manifest on its own. */
async function writeBatch(run: CosignRun, runner: CosignRunner, plans: CommandPlans, batch: WriteItem[]): Promise<void> {
  const { s } = run;
  const max = s.budget.maxAttempts;
  let r: BatchOutcome;
  try {
    await run.gate.beforeFirstWrite();
    const argv = cosignArgv(s.command, batchFlags(plans.plan.args, s.budget.attemptTimeoutSeconds, batch.length), ...batch.map((i) => i.target.pinned));
    for (const { work, target } of batch) work.log.info(`${s.command} ${target.pinned}: attempt 1/${max} (one cosign run for ${batch.length} manifests)`);
    r = await run.limiter.run(() => runner.runBatch(s.command, argv, s.budget.attemptTimeoutSeconds * 1000 * batch.length));
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    return settleTargets(batch, () => Promise.reject(err));
  }
  printBatch(run, batch, r);
  if (r.ok) return settleTargets(batch, (i) => written(run, runner, plans, i.work, i.target, 1));
  const failure = r.failure!;
  // A permanent failure may belong to one manifest of the batch only: each gets one attempt of its
  // own. Otherwise each has what the budget leaves after the batch's attempt.
  const retries = failure.kind === 'permanent' ? 1 : max - 1;
  const next =
    failure.kind === 'permanent'
      ? "tried once more on its own (the failure may be another manifest's)"
      : retries > 0
        ? 'tried again on its own'
        : 'no attempt left in the budget';
  for (const { work, target } of batch) {
    work.log.info(
      `Attempt 1/${max} of ${s.command} ${target.label} failed in a run for ${batch.length} manifests [${failure.kind}: ${failure.reason}]: ${r.message}; ${next}.`,
    );
  }
  if (failure.kind === 'reguard') await run.gate.reguard(r.startedAt);
  if (retries === 0) {
    return settleTargets(batch, (i) =>
      Promise.reject(new UserError(`cosign ${s.command} failed for ${i.target.pinned} after 1 attempt(s) [${failure.kind}: ${failure.reason}]: ${r.message}`)),
    );
  }
  const plan: RetryPlan = { budget: { ...s.budget, maxAttempts: retries }, offset: 1 };
  return settleTargets(batch, async (i) => {
    if (await writtenBefore(run, runner, plans, i)) return written(run, runner, plans, i.work, i.target, 1);
    await writeTarget(run, runner, plans, i.work, i.target, plan);
  });
}

/**
 * skipIfPresent's check again after a failed batch: the manifest did not verify before it, so if it
 * verifies now, the batch wrote it before it stopped (cosign does the references in turn).
 */
async function writtenBefore(run: CosignRun, runner: CosignRunner, plans: CommandPlans, i: WriteItem): Promise<boolean> {
  if (!(await verifiesNow(run, runner, plans, i.work, i.target))) return false;
  i.work.log.info(`${i.target.pinned} verifies now: the failed run wrote it before it stopped; not written again.`);
  return true;
}

// Runs cosign on one manifest: one command retried within the budget, and the skipIfPresent check.
// cosign's own lines go into the image's block; attempts and waits are printed as they happen.
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { quote } from '../../platform/output';
import { childEnvironment, runProcess } from '../../platform/process';
import { AttemptReport, FailureClass, RetryBudget, RetryError, withRetry } from '../../platform/retry';
import { DockerConfigHandle } from '../../services/credentials';
import { CosignCommand, CosignFailure, CosignOutcome, FlagPlan, classifyCosignFailure } from '../../tools/cosign';
import { CosignRun, ImageWork, MAX_BLOCK_LINES, Target } from './context';

const SIGN_TYPES = ['cosign container image signature', 'https://sigstore.dev/cosign/sign/v1'];

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

/**
 * cosign's argv: flags (extra `arguments` included) first, then `--`, then the image, so nothing in
 * the image position is ever read as a flag (cosign 2.x and 3.x both accept `--`).
 */
export function cosignArgv(command: CosignCommand, flags: string[], ...images: string[]): string[] {
  return [command, ...flags, '--', ...images];
}

/** How a give-up reads: the attempts, the failure class with its hint, and the last error. */
export function failureSummary(failed: RetryError, attempts = failed.attempts): string {
  const f = failed.failure;
  return `after ${attempts} attempt(s) [${f.kind}: ${f.reason}]${f.hint ? ` (${f.hint})` : ''}: ${errorMessage(failed.lastError)}`;
}

export function logAttempt(log: (l: string) => void, what: string, r: AttemptReport): void {
  const f = r.failure;
  // One short line per attempt: the whole error is in the image's block and in the final failure.
  const msg = quote(errorMessage(r.error).split('\n')[0], 200);
  const next =
    r.nextWaitMs === undefined
      ? f.kind === 'permanent'
        ? `not retried${f.hint ? ` (${f.hint})` : ''}`
        : 'no attempt left in the budget'
      : `waiting ${r.nextWaitMs} ms (${(r.nextWaitMs / 1000).toFixed(1)}s) before attempt ${r.attempt + 1}${f.kind === 'reguard' ? ', then the GC guard again' : ''}`;
  log(`Attempt ${r.attempt}/${r.maxAttempts} of ${what} failed [${f.kind}: ${f.reason}]: ${msg}; ${next}.`);
}

/**
 * The attempts a manifest has left after a batch it was in failed: the batch was its first, so
 * its own retries take the rest of the budget and count on from there.
 */
export interface RetryPlan {
  budget: RetryBudget;
  /** Attempts already made (the failed batch): added to every number printed and returned. */
  offset: number;
}

/** How one cosign run on several manifests ended: all of them written, or a failure for all of them. */
export interface BatchOutcome {
  ok: boolean;
  /** When the run started: a guard wait that ended after it already covers its 401. */
  startedAt: number;
  failure?: FailureClass;
  /** Why it failed, from cosign's last lines (one line). */
  message?: string;
  /** cosign's own lines, printed as the batch's block. */
  lines: string[];
}

export interface CosignRunner {
  withRetry(
    work: ImageWork,
    command: CosignCommand,
    args: string[],
    target: Target,
    quiet: boolean,
    plan?: RetryPlan,
  ): Promise<{ outcome: CosignOutcome; attempts: number }>;
  /**
   * Any cosign argv (generate, attach) retried the same way; `label` names it in the log and
   * `classifyAs` is the command whose failure classes apply.
   */
  runArgv(
    work: ImageWork,
    label: string,
    classifyAs: CosignCommand,
    argv: string[],
    target: Target,
    quiet: boolean,
    plan?: RetryPlan,
  ): Promise<{ outcome: CosignOutcome; attempts: number }>;
  /** One attempt of one cosign run on several manifests (argv names them all); never retried here. */
  runBatch(command: CosignCommand, argv: string[], timeoutMs: number): Promise<BatchOutcome>;
  alreadyPresent(work: ImageWork, target: Target, verifyPlan: FlagPlan): Promise<boolean>;
}

/** Keeps a line of cosign's in the image's block (stdout lines cut: cosign prints payloads there). */
function keepLine(block: string[], line: string, stream: 'stdout' | 'stderr'): void {
  if (line.trim() === '' || block.length >= MAX_BLOCK_LINES) return;
  block.push(`  [cosign] ${stream === 'stdout' ? quote(line, 300) : line}`);
  if (block.length === MAX_BLOCK_LINES) block.push(`  [cosign] (more lines not kept: at most ${MAX_BLOCK_LINES} per block)`);
}

/** An attempt report numbered as the manifest's whole budget counts it. */
function shifted(r: AttemptReport, offset: number): AttemptReport {
  return offset === 0 ? r : { ...r, attempt: r.attempt + offset, maxAttempts: r.maxAttempts + offset };
}

export function cosignRunner(run: CosignRun, creds: DockerConfigHandle): CosignRunner {
  const { s, signal, binary } = run;
  const env = childEnvironment({ ...creds.env, COSIGN_PASSWORD: s.keyPassword });
  const options = (attemptSignal: AbortSignal, block?: string[], timeoutMs = s.budget.attemptTimeoutSeconds * 1000) => ({
    env,
    signal: attemptSignal,
    cancelSignal: signal,
    timeoutMs,
    onLine: block ? (line: string, stream: 'stdout' | 'stderr') => keepLine(block, line, stream) : undefined,
  });
  const runner: CosignRunner = {
    withRetry: (work, command, args, target, quiet, plan) =>
      runner.runArgv(work, command, command, cosignArgv(command, args, target.pinned), target, quiet, plan),
    async runArgv(work, label, command, argv, target, quiet, plan = { budget: s.budget, offset: 0 }) {
      const { budget, offset } = plan;
      // When the attempt that failed began: a guard wait that ended after it already covers its 401.
      let attemptStartedAt = 0;
      const { value, attempts } = await withRetry(
        async (attempt, attemptSignal) => {
          attemptStartedAt = Date.now();
          work.log.info(`${label} ${target.pinned}: attempt ${attempt + offset}/${budget.maxAttempts + offset}`);
          const o = await runProcess(binary, argv, options(attemptSignal, quiet ? undefined : work.block));
          if (o.code !== 0 || o.timedOut) throw new CosignFailure(o, command);
          return o;
        },
        {
          budget,
          signal,
          classify: (err) =>
            err instanceof CosignFailure
              ? classifyCosignFailure(err.outcome, { reguardOn401: run.reguardOn401, command })
              : { kind: 'transient', reason: 'unknown' },
          onFailure: (r) => {
            if (quiet && r.error instanceof CosignFailure) for (const l of r.error.outcome.stderr.split(/\r?\n/)) keepLine(work.block, l, 'stderr');
            logAttempt(work.log.info, `${label} ${target.label}`, shifted(r, offset));
          },
          beforeAttempt: () => run.gate.idle(),
          beforeReguard: run.reguardOn401 ? () => run.gate.reguard(attemptStartedAt) : undefined,
          giveUp: (failed) => {
            const total = failed.attempts + offset;
            target.attempts = Math.max(target.attempts, total);
            run.progress.attempts = Math.max(run.progress.attempts, total);
            return new UserError(`cosign ${label} failed for ${target.pinned} ${failureSummary(failed, total)}`);
          },
        },
      );
      return { outcome: value, attempts: attempts + offset };
    },
    async runBatch(command, argv, timeoutMs) {
      await run.gate.idle();
      const lines: string[] = [];
      const startedAt = Date.now();
      const o = await runProcess(binary, argv, options(signal, lines, timeoutMs));
      if (signal.aborted) throw new CancelledError();
      if (o.code === 0 && !o.timedOut) return { ok: true, startedAt, lines };
      const failure = classifyCosignFailure(o, { reguardOn401: run.reguardOn401, command });
      return { ok: false, startedAt, failure, message: errorMessage(new CosignFailure(o, command)), lines };
    },
    async alreadyPresent(work, target, verifyPlan) {
      const o = await runProcess(binary, cosignArgv(run.verifyCommand, verifyPlan.args, target.pinned), options(signal));
      if (o.code !== 0) {
        work.log.debug(`skipIfPresent: ${run.verifyCommand} ${target.pinned} exited ${o.code}: ${o.stderr.trim().split('\n').pop() ?? ''}`);
        return false;
      }
      return run.verifyCommand === 'verify' ? hasSignaturePayload(o.stdout) : true;
    },
  };
  return runner;
}

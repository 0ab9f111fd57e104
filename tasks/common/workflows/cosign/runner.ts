// Runs cosign on one manifest: one command retried within the budget, and the skipIfPresent check.
// cosign's own lines go into the image's block; attempts and waits are printed as they happen.
import { UserError, errorMessage } from '../../platform/errors';
import { quote } from '../../platform/output';
import { childEnvironment, runProcess } from '../../platform/process';
import { AttemptReport, RetryError, withRetry } from '../../platform/retry';
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
export function cosignArgv(command: CosignCommand, flags: string[], image: string): string[] {
  return [command, ...flags, '--', image];
}

/** How a give-up reads: the attempts, the failure class with its hint, and the last error. */
export function failureSummary(failed: RetryError): string {
  const f = failed.failure;
  return `after ${failed.attempts} attempt(s) [${f.kind}: ${f.reason}]${f.hint ? ` (${f.hint})` : ''}: ${errorMessage(failed.lastError)}`;
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

export interface CosignRunner {
  withRetry(work: ImageWork, command: CosignCommand, args: string[], target: Target, quiet: boolean): Promise<{ outcome: CosignOutcome; attempts: number }>;
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
  ): Promise<{ outcome: CosignOutcome; attempts: number }>;
  alreadyPresent(work: ImageWork, target: Target, verifyPlan: FlagPlan): Promise<boolean>;
}

/** Keeps a line of cosign's in the image's block (stdout lines cut: cosign prints payloads there). */
function keepLine(work: ImageWork, line: string, stream: 'stdout' | 'stderr'): void {
  if (line.trim() === '' || work.block.length >= MAX_BLOCK_LINES) return;
  work.block.push(`  [cosign] ${stream === 'stdout' ? quote(line, 300) : line}`);
  if (work.block.length === MAX_BLOCK_LINES) work.block.push(`  [cosign] (more lines not kept: at most ${MAX_BLOCK_LINES} per image)`);
}

export function cosignRunner(run: CosignRun, creds: DockerConfigHandle): CosignRunner {
  const { s, signal, binary } = run;
  const env = childEnvironment({ ...creds.env, COSIGN_PASSWORD: s.keyPassword });
  const options = (attemptSignal: AbortSignal, work?: ImageWork) => ({
    env,
    signal: attemptSignal,
    cancelSignal: signal,
    timeoutMs: s.budget.attemptTimeoutSeconds * 1000,
    onLine: work ? (line: string, stream: 'stdout' | 'stderr') => keepLine(work, line, stream) : undefined,
  });
  const runner: CosignRunner = {
    withRetry: (work, command, args, target, quiet) => runner.runArgv(work, command, command, cosignArgv(command, args, target.pinned), target, quiet),
    async runArgv(work, label, command, argv, target, quiet) {
      // When the attempt that failed began: a guard wait that ended after it already covers its 401.
      let attemptStartedAt = 0;
      const { value, attempts } = await withRetry(
        async (attempt, attemptSignal) => {
          attemptStartedAt = Date.now();
          work.log.info(`${label} ${target.pinned}: attempt ${attempt}/${s.budget.maxAttempts}`);
          const o = await runProcess(binary, argv, options(attemptSignal, quiet ? undefined : work));
          if (o.code !== 0 || o.timedOut) throw new CosignFailure(o, command);
          return o;
        },
        {
          budget: s.budget,
          signal,
          classify: (err) =>
            err instanceof CosignFailure
              ? classifyCosignFailure(err.outcome, { reguardOn401: run.reguardOn401, command })
              : { kind: 'transient', reason: 'unknown' },
          onFailure: (r) => {
            if (quiet && r.error instanceof CosignFailure) for (const l of r.error.outcome.stderr.split(/\r?\n/)) keepLine(work, l, 'stderr');
            logAttempt(work.log.info, `${label} ${target.label}`, r);
          },
          beforeAttempt: () => run.gate.idle(),
          beforeReguard: run.reguardOn401 ? () => run.gate.reguard(attemptStartedAt) : undefined,
          giveUp: (failed) => {
            target.attempts = Math.max(target.attempts, failed.attempts);
            run.progress.attempts = Math.max(run.progress.attempts, failed.attempts);
            return new UserError(`cosign ${label} failed for ${target.pinned} ${failureSummary(failed)}`);
          },
        },
      );
      return { outcome: value, attempts };
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

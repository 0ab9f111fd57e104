import { CancelledError, UserError, errorMessage } from './errors';

/**
 * How much retrying one operation may cost. Every figure is an input the
 * user can see, and assertBudget() proves before any work that the worst case
 * fits inside totalTimeoutSeconds: a budget that is checked before the first attempt, not hoped for.
 */
export interface RetryBudget {
  maxAttempts: number;
  attemptTimeoutSeconds: number;
  initialBackoffSeconds: number;
  maxBackoffSeconds: number;
  totalTimeoutSeconds: number;
}

/** The cap of the wait after failed attempt n (1-based): initial × 2^(n-1), at most maxBackoff. */
export function backoffCapSeconds(budget: RetryBudget, failedAttempt: number): number {
  return Math.min(budget.maxBackoffSeconds, budget.initialBackoffSeconds * 2 ** (failedAttempt - 1));
}

/** The largest possible sum of backoffs: one after every attempt but the last. */
export function worstCaseBackoffSeconds(budget: RetryBudget): number {
  let sum = 0;
  for (let n = 1; n < budget.maxAttempts; n++) sum += backoffCapSeconds(budget, n);
  return sum;
}

export function worstCaseSeconds(budget: RetryBudget): number {
  return budget.maxAttempts * budget.attemptTimeoutSeconds + worstCaseBackoffSeconds(budget);
}

/** Fails with the numbers when the worst case does not fit the total. */
export function assertBudget(budget: RetryBudget, totalName = 'totalTimeoutMinutes'): void {
  const worst = worstCaseSeconds(budget);
  if (worst > budget.totalTimeoutSeconds) {
    throw new UserError(
      `Retry budget does not fit: maxAttempts (${budget.maxAttempts}) × attemptTimeoutSeconds (${budget.attemptTimeoutSeconds}) ` +
        `+ largest backoffs (${worstCaseBackoffSeconds(budget)}s) = ${worst}s exceeds ${totalName} (${budget.totalTimeoutSeconds}s); ` +
        `lower maxAttempts or attemptTimeoutSeconds, or raise ${totalName}.`,
    );
  }
}

/** Full jitter: a uniform wait in [0, cap] so parallel jobs do not retry in step. */
export function jitteredBackoffMs(budget: RetryBudget, failedAttempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCapSeconds(budget, failedAttempt) * 1000);
}

export type FailureKind = 'transient' | 'permanent' | 'reguard';

export interface FailureClass {
  kind: FailureKind;
  /** Short name for logs, e.g. "rekor-404", "http-503". */
  reason: string;
  /** A one-line hint for permanent failures. */
  hint?: string;
  /** A server-dictated wait (Retry-After) that replaces the jittered backoff. */
  waitMs?: number;
}

export interface AttemptReport {
  attempt: number;
  maxAttempts: number;
  failure: FailureClass;
  error: unknown;
  /** The wait before the next attempt, or undefined when no attempt follows. */
  nextWaitMs?: number;
}

export interface RetryOptions {
  budget: RetryBudget;
  classify: (err: unknown) => FailureClass;
  signal?: AbortSignal;
  /** Told about each failed attempt (for logs). */
  onFailure?: (report: AttemptReport) => void;
  /** Runs before the attempt that follows a 'reguard' failure (e.g. wait for GC again). */
  beforeReguard?: (signal: AbortSignal) => Promise<void>;
  /**
   * Runs before every attempt, outside its deadline: a wait that work running in parallel asks
   * for (a GC guard wait in progress, a registry's Retry-After) holds the next attempt, not kills it.
   */
  beforeAttempt?: (signal: AbortSignal) => Promise<void>;
  /**
   * How giving up reads: the error thrown when no attempt is left or a failure is permanent (the
   * RetryError carries attempts, the failure class and the last error). Default: the RetryError.
   */
  giveUp?: (failed: RetryError) => Error;
  random?: () => number;
  now?: () => number;
}

export class RetryError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
    readonly failure: FailureClass,
    readonly lastError: unknown,
  ) {
    super(message);
    this.name = 'RetryError';
  }
}

export interface LinkedDeadline {
  signal: AbortSignal;
  /** True once the deadline itself (not the parent) fired. */
  expired(): boolean;
  clear(): void;
}

/**
 * A signal that fires when the parent fires or after `ms`. A plain timer and listener, both held
 * until clear(): AbortSignal.any() holds its sources weakly, so a timeout signal that nothing else
 * references can be garbage-collected and never fire.
 */
export function linkedDeadline(parent: AbortSignal | undefined, ms: number): LinkedDeadline {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(
    () => {
      expired = true;
      controller.abort(new CancelledError('deadline'));
    },
    Math.max(0, ms),
  );
  const onParent = () => controller.abort(parent?.reason);
  if (parent?.aborted) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    expired: () => expired,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/** Sleeps, waking early (with CancelledError) when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The one loop that owns retry semantics. Each attempt gets its own deadline
 * (attemptTimeoutSeconds) through the signal it is handed; permanent failures
 * end the loop at once; transient ones wait a fully jittered backoff (or the
 * server's Retry-After); 'reguard' failures run beforeReguard first. Nothing
 * outlives totalTimeoutSeconds, and cancellation ends every wait at once.
 */
export async function withRetry<T>(
  operation: (attempt: number, signal: AbortSignal) => Promise<T>,
  options: RetryOptions,
): Promise<{ value: T; attempts: number }> {
  const { budget, classify, signal } = options;
  const now = options.now ?? Date.now;
  const deadline = now() + budget.totalTimeoutSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw new CancelledError();
    if (options.beforeAttempt) await options.beforeAttempt(signal ?? new AbortController().signal);
    const attemptDeadline = linkedDeadline(signal, Math.max(1, Math.min(budget.attemptTimeoutSeconds * 1000, deadline - now())));
    const attemptSignal = attemptDeadline.signal;
    try {
      const value = await operation(attempt, attemptSignal);
      attemptDeadline.clear();
      return { value, attempts: attempt };
    } catch (err) {
      attemptDeadline.clear();
      if (signal?.aborted || err instanceof CancelledError) throw new CancelledError();
      if (err instanceof UserError) throw err;
      const failure = classify(err);
      const last = failure.kind === 'permanent' || attempt >= budget.maxAttempts;
      let waitMs: number | undefined;
      if (!last) {
        waitMs = failure.waitMs ?? jitteredBackoffMs(budget, attempt, options.random);
        if (now() + waitMs >= deadline) waitMs = undefined;
      }
      options.onFailure?.({ attempt, maxAttempts: budget.maxAttempts, failure, error: err, nextWaitMs: waitMs });
      if (waitMs === undefined) {
        const why =
          failure.kind === 'permanent'
            ? `${failure.reason} (not retried${failure.hint ? `: ${failure.hint}` : ''})`
            : `${failure.reason} after ${attempt} attempt(s)`;
        const failed = new RetryError(`${why}: ${errorMessage(err)}`, attempt, failure, err);
        throw options.giveUp ? options.giveUp(failed) : failed;
      }
      await sleep(waitMs, signal);
      if (failure.kind === 'reguard' && options.beforeReguard) await options.beforeReguard(signal ?? new AbortController().signal);
    }
  }
}

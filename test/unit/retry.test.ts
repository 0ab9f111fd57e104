import * as assert from 'assert';
import { CancelledError, UserError } from '../../tasks/common/platform/errors';
import {
  RetryBudget,
  RetryError,
  assertBudget,
  backoffCapSeconds,
  jitteredBackoffMs,
  withRetry,
  worstCaseBackoffSeconds,
  worstCaseSeconds,
} from '../../tasks/common/platform/retry';

// Cosign@1's contract defaults: 5 attempts × 180 s, backoff 5..60 s, 20 min total.
const CONTRACT_DEFAULTS: RetryBudget = {
  maxAttempts: 5,
  attemptTimeoutSeconds: 180,
  initialBackoffSeconds: 5,
  maxBackoffSeconds: 60,
  totalTimeoutSeconds: 20 * 60,
};

describe('retry budget arithmetic: the worst case must fit the total', () => {
  it('backoff caps double from the initial value and stop at the maximum', () => {
    assert.deepStrictEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffCapSeconds(CONTRACT_DEFAULTS, n)),
      [5, 10, 20, 40, 60, 60],
    );
  });

  it('the worst case is attempts × timeout plus one backoff between each pair of attempts', () => {
    assert.strictEqual(worstCaseBackoffSeconds(CONTRACT_DEFAULTS), 5 + 10 + 20 + 40);
    assert.strictEqual(worstCaseSeconds(CONTRACT_DEFAULTS), 5 * 180 + 75);
  });

  it('the contract defaults fit their own total', () => {
    assert.doesNotThrow(() => assertBudget(CONTRACT_DEFAULTS));
  });

  it('a budget that cannot fit fails naming every number', () => {
    const tight = { ...CONTRACT_DEFAULTS, maxAttempts: 10 };
    assert.throws(
      () => assertBudget(tight),
      (err: Error) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, /maxAttempts \(10\) × attemptTimeoutSeconds \(180\)/);
        assert.match(err.message, /largest backoffs \(375s\) = 2175s exceeds totalTimeoutMinutes \(1200s\)/);
        return true;
      },
    );
  });

  it('a single attempt has no backoff at all', () => {
    assert.strictEqual(worstCaseBackoffSeconds({ ...CONTRACT_DEFAULTS, maxAttempts: 1 }), 0);
  });

  it('full jitter stays within [0, cap]', () => {
    assert.strictEqual(
      jitteredBackoffMs(CONTRACT_DEFAULTS, 3, () => 0),
      0,
    );
    assert.strictEqual(
      jitteredBackoffMs(CONTRACT_DEFAULTS, 3, () => 0.999999),
      19999,
    );
    for (let i = 0; i < 200; i++) {
      const ms = jitteredBackoffMs(CONTRACT_DEFAULTS, 2);
      assert.ok(ms >= 0 && ms <= 10_000, `${ms}`);
    }
  });
});

describe('withRetry: the one loop that owns retry semantics', () => {
  const fast: RetryBudget = { maxAttempts: 4, attemptTimeoutSeconds: 5, initialBackoffSeconds: 1, maxBackoffSeconds: 1, totalTimeoutSeconds: 60 };
  const noWait = () => 0;

  it('returns the value and the attempt count after transient failures', async () => {
    let calls = 0;
    const seen: number[] = [];
    const r = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw new Error('503');
        return 'ok';
      },
      { budget: fast, classify: () => ({ kind: 'transient', reason: 'http-503' }), random: noWait, onFailure: (f) => seen.push(f.attempt) },
    );
    assert.deepStrictEqual(r, { value: 'ok', attempts: 3 });
    assert.deepStrictEqual(seen, [1, 2]);
  });

  it('stops at once on a permanent failure, with its hint', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new Error('MANIFEST_UNKNOWN');
        },
        { budget: fast, classify: () => ({ kind: 'permanent', reason: 'manifest-unknown', hint: 'the digest is not in the registry' }), random: noWait },
      ),
      (err: RetryError) => {
        assert.strictEqual(err.attempts, 1);
        assert.match(err.message, /manifest-unknown \(not retried: the digest is not in the registry\): MANIFEST_UNKNOWN/);
        return true;
      },
    );
    assert.strictEqual(calls, 1);
  });

  it('gives up after maxAttempts and says how many', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new Error('reset');
        },
        { budget: fast, classify: () => ({ kind: 'transient', reason: 'network' }), random: noWait },
      ),
      /network after 4 attempt\(s\): reset/,
    );
    assert.strictEqual(calls, 4);
  });

  it('uses a server-dictated wait instead of the jittered backoff', async () => {
    const waits: Array<number | undefined> = [];
    let calls = 0;
    await withRetry(
      async () => {
        if (++calls === 1) throw new Error('429');
        return 1;
      },
      { budget: fast, classify: () => ({ kind: 'transient', reason: 'http-429', waitMs: 30 }), onFailure: (f) => waits.push(f.nextWaitMs) },
    );
    assert.deepStrictEqual(waits, [30]);
  });

  it('runs beforeReguard before the attempt that follows a reguard failure', async () => {
    const events: string[] = [];
    let calls = 0;
    await withRetry(
      async (attempt) => {
        events.push(`attempt ${attempt}`);
        if (++calls === 1) throw new Error('401');
        return 1;
      },
      { budget: fast, classify: () => ({ kind: 'reguard', reason: 'registry-401' }), random: noWait, beforeReguard: async () => void events.push('guard') },
    );
    assert.deepStrictEqual(events, ['attempt 1', 'guard', 'attempt 2']);
  });

  it('hands each attempt a signal that fires at attemptTimeoutSeconds', async () => {
    const budget = { ...fast, maxAttempts: 1, attemptTimeoutSeconds: 1 };
    const started = Date.now();
    await assert.rejects(
      withRetry((_a, signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('attempt timed out')))), {
        budget,
        classify: () => ({ kind: 'transient', reason: 'timeout' }),
      }),
      /timeout after 1 attempt/,
    );
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 3000, `took ${took} ms`);
  });

  it('cancellation ends a backoff wait at once', async () => {
    const controller = new AbortController();
    const slow: RetryBudget = { ...fast, initialBackoffSeconds: 30, maxBackoffSeconds: 30 };
    const started = Date.now();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(
      withRetry(
        async () => {
          throw new Error('503');
        },
        { budget: slow, classify: () => ({ kind: 'transient', reason: 'http-503' }), random: () => 1, signal: controller.signal },
      ),
      (err) => err instanceof CancelledError,
    );
    assert.ok(Date.now() - started < 2000);
  });

  it('user errors pass straight through, never retried', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new UserError('bad input');
        },
        { budget: fast, classify: () => ({ kind: 'transient', reason: 'x' }) },
      ),
      /bad input/,
    );
    assert.strictEqual(calls, 1);
  });

  it('giveUp decides how giving up reads, with the attempts, the failure class and the last error', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new Error(`flake ${calls}`);
        },
        {
          budget: fast,
          classify: () => ({ kind: 'transient', reason: 'flaky' }),
          giveUp: (failed) => new UserError(`gave up after ${failed.attempts} (${failed.failure.reason}): ${(failed.lastError as Error).message}`),
        },
      ),
      (err) => err instanceof UserError && err.message === `gave up after ${fast.maxAttempts} (flaky): flake ${fast.maxAttempts}`,
    );
    assert.strictEqual(calls, fast.maxAttempts);
  });
});

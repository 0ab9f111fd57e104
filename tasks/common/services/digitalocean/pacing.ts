// How often one client may call a token's API when many jobs share it. DigitalOcean counts requests
// per token (250 a minute in bursts, 5,000 an hour) and says what is left in ratelimit-* headers.
import { HttpResponse } from '../../platform/http';

interface RateSample {
  at: number;
  remaining: number;
}

/** 60 % of DigitalOcean's 250/min burst limit: room for the start-up burst of many jobs, the controller's lag and other clients. */
export const DEFAULT_TARGET_REQUESTS_PER_MINUTE = 150;
/** The longest a poll is ever held back by pacing alone. */
const MAX_PACED_DELAY_MS = 5 * 60_000;
/** ratelimit-remaining samples older than this are forgotten. */
const SAMPLE_WINDOW_MS = 10 * 60_000;

/**
 * The token-wide request rate, read from how fast ratelimit-remaining falls between this client's
 * own requests (so it counts every job sharing the token), and the delay before the next poll.
 */
export class RatePacer {
  private samples: RateSample[] = [];
  private limit?: number;
  private remaining?: number;
  private resetAt?: number;
  private throttledUntil = 0;
  private slowFactor = 1;
  private lastPollDelayMs?: number;
  /** Why the last pollDelayMs was well above the interval asked for ('' when it was not). */
  reason = '';

  constructor(private readonly targetRpm = DEFAULT_TARGET_REQUESTS_PER_MINUTE) {}

  /**
   * How long to wait before the next poll, given the wanted interval: never shorter. Longer when
   * the token-wide rate exceeds the target (the delay scales by rate/target each poll: a
   * multiplicative controller whose fixed point is the target rate), when the hourly budget runs
   * low (what is left is spread until ratelimit-reset) and after a 429.
   */
  pollDelayMs(baseMs: number): number {
    const now = Date.now();
    const prev = this.lastPollDelayMs ?? baseMs;
    const rate = this.observedTokenRate(now, prev);
    let delay = baseMs;
    let reason = '';
    if (rate !== undefined && rate > 0) delay = Math.max(baseMs, (prev * rate) / this.targetRpm);
    else if (rate === undefined) delay = Math.max(baseMs, prev);
    if (delay > baseMs && rate !== undefined)
      reason = `the token is used at about ${Math.round(rate)} requests/min by every job sharing it (pacing to ${this.targetRpm}/min)`;
    if (this.slowFactor > 1.05) {
      delay *= this.slowFactor;
      reason = 'DigitalOcean answered 429 (rate limited) recently';
    }
    const spread = this.hourlySpreadMs(now);
    if (spread !== undefined && spread > delay) {
      delay = spread;
      reason = `only ${this.remaining} of the token's ${this.limit} requests/hour are left`;
    }
    this.reason = delay > baseMs * 1.5 ? reason : '';
    delay = Math.min(delay, Math.max(baseMs, MAX_PACED_DELAY_MS));
    this.lastPollDelayMs = delay;
    if (this.throttledUntil > now) delay = Math.max(delay, this.throttledUntil - now);
    // A little jitter (≤ 5 %, ≤ 0.5 s) so many jobs on one token do not poll in step.
    return Math.round(delay + Math.random() * Math.min(500, baseMs * 0.05));
  }

  /** When fewer than max(20, 10 %) of the hour's requests are left: the time until reset shared among them. */
  private hourlySpreadMs(now: number): number | undefined {
    if (this.limit === undefined || this.remaining === undefined || this.resetAt === undefined) return undefined;
    if (this.remaining >= Math.max(20, this.limit * 0.1)) return undefined;
    const untilReset = Math.max(0, this.resetAt - now);
    return this.remaining <= 1 ? untilReset : untilReset / (this.remaining - 1);
  }

  /**
   * Requests per minute across the whole token: the fall of ratelimit-remaining from the oldest
   * sample inside max(60 s, 1.5 × the last poll delay) to the newest, over at least 5 s.
   * undefined when there is no such pair.
   */
  private observedTokenRate(now: number, lastDelayMs: number): number | undefined {
    const window = Math.max(60_000, 1.5 * lastDelayMs);
    const recent = this.samples.filter((s) => now - s.at <= window);
    if (recent.length < 2) return undefined;
    const first = recent[0];
    const last = recent[recent.length - 1];
    const dt = last.at - first.at;
    if (dt < 5_000) return undefined;
    const used = Math.max(0, first.remaining - last.remaining);
    return (used / dt) * 60_000;
  }

  /** Reads the ratelimit-* headers of any answer (numbers only; anything else is ignored). */
  noteHeaders(res: HttpResponse): void {
    const h = res.headers as Record<string, unknown>;
    const num = (k: string) => {
      const v = Number(String(h[k] ?? ''));
      return Number.isFinite(v) && String(h[k] ?? '') !== '' ? v : undefined;
    };
    const limit = num('ratelimit-limit');
    const remaining = num('ratelimit-remaining');
    const reset = num('ratelimit-reset');
    if (limit !== undefined) this.limit = limit;
    if (reset !== undefined) this.resetAt = reset * 1000;
    if (remaining !== undefined) {
      this.remaining = remaining;
      const now = Date.now();
      this.samples.push({ at: now, remaining });
      this.samples = this.samples.filter((s) => now - s.at <= SAMPLE_WINDOW_MS).slice(-500);
    }
  }

  /** A 2xx answer: the slow-down after a 429 decays. */
  noteSuccess(): void {
    this.slowFactor = Math.max(1, this.slowFactor * 0.95);
  }

  /** A 429: no poll before the wait DigitalOcean asked for, and polls slow down (at most 8×). */
  noteThrottled(waitMs: number): void {
    this.throttledUntil = Math.max(this.throttledUntil, Date.now() + waitMs);
    this.slowFactor = Math.min(8, this.slowFactor * 2);
  }
}

// What the images Cosign@1 handles in parallel share: the GC guard (one wait at a time, never
// several guards polling the DigitalOcean API at once) and a registry's request to slow down.
import { sleep } from '../../platform/retry';
import { GuardResult } from '../guard';

/**
 * The guard runs once before the first write, whichever image gets there first; the others wait
 * for that same wait. A 401 from the token exchange sends one image back to the guard; while that
 * wait runs, every image's next attempt waits for it too, and an image whose failed attempt started
 * before the last wait ended retries without another.
 */
export class GuardGate {
  private first?: Promise<void>;
  private current?: Promise<void>;
  private lastEndedAt = 0;
  /** The error the guard ended with (a timeout), once it has: it fails the whole job, not one image. */
  failure?: Error;

  constructor(private readonly guard?: (why: string) => Promise<GuardResult>) {}

  /** Before the first write: the guard, once for all images. */
  beforeFirstWrite(): Promise<void> {
    if (!this.guard) return Promise.resolve();
    this.first ??= this.wait('before writing');
    return this.first;
  }

  /** A 401 during the token exchange: wait for the guard again, unless a wait since covers it. */
  reguard(attemptStartedAt: number): Promise<void> {
    if (!this.guard) return Promise.resolve();
    if (this.current) return this.current;
    if (attemptStartedAt < this.lastEndedAt) return Promise.resolve();
    return this.wait('401 from the registry token exchange');
  }

  /** Resolves when no guard wait is in progress. */
  idle(): Promise<void> {
    return this.current ?? Promise.resolve();
  }

  private wait(why: string): Promise<void> {
    const waiting = this.guard!(why).then(
      () => undefined,
      (err: unknown) => {
        if (err instanceof Error) this.failure ??= err;
        throw err;
      },
    );
    const tracked = waiting.finally(() => {
      if (this.current === tracked) this.current = undefined;
      this.lastEndedAt = Date.now();
    });
    this.current = tracked;
    // Callers handle the error; the tracked copy must not also be reported as unhandled.
    tracked.catch(() => undefined);
    return tracked;
  }
}

/** A registry's 429 with Retry-After holds every image's next request to it, not only the one that got it. */
export class RegistryPause {
  private until = 0;

  /** Notes a wait the registry asked for. */
  hold(waitMs: number): void {
    this.until = Math.max(this.until, Date.now() + waitMs);
  }

  /** Resolves once the registry's last requested wait has passed. */
  async wait(signal: AbortSignal): Promise<void> {
    for (let left = this.until - Date.now(); left > 0; left = this.until - Date.now()) await sleep(left, signal);
  }
}

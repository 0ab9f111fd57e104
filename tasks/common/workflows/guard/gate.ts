// The one guard entry for every task that writes to a registry (Cosign@1, RegistryCleanup@1): the
// guard wait itself, and the gate that the task's parallel writes share (one wait at a time, never
// several guards polling the DigitalOcean API at once).
import { agentVariable } from '../../platform/agent';
import { UserError } from '../../platform/errors';
import { Logger } from '../../platform/output';
import { formatDuration } from '../../platform/task';
import { DigitalOceanClient } from '../../services/digitalocean';
import { readTimelineClient } from '../../services/timeline';
import { waitForGuard } from './index';
import { GuardResult } from './result';
import { GuardSettings } from './settings';

export interface WriteGuardOptions {
  /** The DigitalOcean connection's client, when there is a registry whose GCs to wait out. */
  doClient?: DigitalOceanClient;
  settings: GuardSettings;
  log: Logger;
  signal: AbortSignal;
  /** Called with each wait's result once it ended (a task's totals and notes). */
  onWaited?: (result: GuardResult, why: string) => void;
}

/**
 * Whether a write has a guard to wait for: `gcGuard` on, and a DigitalOcean registry (its connection
 * or client) whose GCs to wait out, or stages to wait for.
 */
export function guardWanted(gcGuard: boolean, doRegistry: object | undefined, settings: GuardSettings): boolean {
  return gcGuard && (doRegistry !== undefined || settings.stages.length > 0);
}

/**
 * The guard wait of a task that writes: no GC active on the registry, the named stages completed,
 * the settle time passed. A wait that times out is the task's failure (guardTimeoutMinutes), never
 * a write into a registry that may be read-only.
 */
export function writeGuard(o: WriteGuardOptions): (why: string) => Promise<GuardResult> {
  const { settings, log } = o;
  const timeline = settings.stages.length > 0 ? readTimelineClient(true, { log: log.info }) : undefined;
  return async (why) => {
    log.info(
      `GC guard (${why}): waiting until no garbage collection is active${settings.stages.length ? ` and stages ${settings.stages.join(', ')} completed` : ''}...`,
    );
    const g = await waitForGuard({ client: o.doClient, timeline, log, currentStage: agentVariable('SYSTEM_STAGENAME') }, settings, o.signal);
    log.info(`GC guard: ${g.message}`);
    o.onWaited?.(g, why);
    if (g.timedOut) throw new UserError(`GC guard timed out after ${formatDuration(settings.timeoutSeconds)} (guardTimeoutMinutes): ${g.message}`);
    return g;
  };
}

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

  constructor(
    private readonly guard?: (why: string) => Promise<GuardResult>,
    private readonly firstWhy = 'before writing',
  ) {}

  /** Whether there is a guard at all. */
  get guarded(): boolean {
    return this.guard !== undefined;
  }

  /** Before the first write: the guard, once for all images. */
  beforeFirstWrite(): Promise<void> {
    if (!this.guard) return Promise.resolve();
    this.first ??= this.wait(this.firstWhy);
    return this.first;
  }

  /**
   * The registry said it is read-only (a 401 during the token exchange, a refused delete): wait for
   * the guard again, unless a wait since the failed attempt started covers it.
   */
  reguard(attemptStartedAt: number, why = '401 from the registry token exchange'): Promise<void> {
    if (!this.guard) return Promise.resolve();
    if (this.current) return this.current;
    if (attemptStartedAt < this.lastEndedAt) return Promise.resolve();
    return this.wait(why);
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

// The one GC watcher, shared by DoRegistryGarbageCollection@1 (workflows/gcrun) and the guard
// (workflows/guard): one look at the registry's active GC at a time, the final record of the GC it
// watched once that is no longer the active one, and when the settle time after it may start.
// The rules live here once: only succeeded, failed and cancelled end a GC (a status DigitalOcean
// adds later counts as active); a GC has ended when the active-GC endpoint no longer reports it;
// the settle time counts from the first moment the task knew the GC had ended.
import { DigitalOceanClient, GarbageCollection, isTerminalGcStatus, parseDoTime } from '../../services/digitalocean';

/** DigitalOcean's timestamps have one-second resolution: a GC stamped 12:00:00 may have ended at 12:00:00.999. */
export const DO_TIMESTAMP_RESOLUTION_MS = 1000;

/** The status a GC run reports for a GC that left the list of GCs before it was seen terminal (our word, not DigitalOcean's). */
export const MISSING_GC_STATUS = 'unknown';

/** How many of the newest GCs are read to find a watched GC's final record. */
const FINAL_RECORD_WINDOW = 20;

export interface GcWatcherOptions {
  /**
   * 'any': watch whatever GC is active (the guard: a GC that replaces another is watched next).
   * 'one': watch only the GC handed to watch() (a GC run: another GC active means ours ended).
   */
  follow: 'any' | 'one';
  /** Keep reading the watched GC's record until it is terminal (a GC run wants its final status). */
  untilTerminal: boolean;
}

/** What one look saw. */
export interface GcLook {
  /** When the answer arrived. */
  at: number;
  /** The GC the active-GC endpoint reports and that has not ended (unknown statuses included); undefined: none. */
  active?: GarbageCollection;
  /** True when `active` was not seen before, or its status changed since the last look. */
  changed: boolean;
  /** The watched GC's newest record (the active answer, else its entry in the list of GCs). */
  watched?: GarbageCollection;
  /** This look is the first to know that the watched GC ended. */
  endedNow: boolean;
  /** The watched GC is not the active one and the list of GCs no longer has it: its final status is unknown. */
  missing: boolean;
}

/** True while a status counts as active: every status but succeeded, failed and cancelled (fail closed). */
export function countsAsActive(status: string): boolean {
  return !isTerminalGcStatus(status);
}

/**
 * When the settle time after a GC starts, never before its real end. `knownEndedAt`: the first
 * moment the task knew it had ended (its own look). Without one (the GC ended before the task
 * first looked), its final `updated_at` plus the timestamp's resolution, but never later than
 * `lookedAt` (it had ended by then).
 */
export function settleStart(end: { knownEndedAt?: number; updatedAt?: string; lookedAt: number }): number {
  if (end.knownEndedAt !== undefined) return end.knownEndedAt;
  const stamped = parseDoTime(end.updatedAt);
  if (Number.isNaN(stamped)) return end.lookedAt;
  return Math.min(end.lookedAt, stamped + DO_TIMESTAMP_RESOLUTION_MS);
}

export class GcWatcher {
  /** The GC being watched: the one last seen active (or handed to watch()). */
  watched?: GarbageCollection;
  /** When a look last saw a GC active. */
  lastActiveAt?: number;
  /** When the settle time after the last GC may start (undefined: no GC has ended while watched). */
  settleFrom?: number;
  private ended = false;

  constructor(
    private readonly client: DigitalOceanClient,
    private readonly registry: string,
    private readonly options: GcWatcherOptions,
  ) {}

  /** Watch `gc` (a GC this task started, adopted, or waits for). */
  watch(gc: GarbageCollection): void {
    this.watched = gc;
    this.ended = !countsAsActive(gc.status);
  }

  /** A GC that ended before the first look (seen only in the list): the settle time counts from its own end. */
  endedBeforeFirstLook(gc: GarbageCollection, lookedAt: number): number {
    const from = settleStart({ updatedAt: gc.updated_at, lookedAt });
    this.settleFrom = Math.max(this.settleFrom ?? from, from);
    return from;
  }

  /** One look at the active GC; when the watched GC is no longer it, its record from the list. */
  async look(signal: AbortSignal): Promise<GcLook> {
    const answer = await this.client.getActiveGc(this.registry, signal);
    const at = Date.now();
    const active = answer && countsAsActive(answer.status) ? answer : undefined;
    const prev = this.watched;
    const same = (g: GarbageCollection | undefined) => g !== undefined && prev !== undefined && g.uuid === prev.uuid;
    let endedNow = false;
    let missing = false;
    if (prev && !this.ended && !same(active)) {
      // Not the active one any more: it ended (or is ending); its record comes from the answer or the list.
      const record = same(answer) ? answer : await this.recordOf(prev.uuid, signal);
      missing = record === undefined;
      if (record) this.watched = record;
      if (missing || !this.options.untilTerminal || !countsAsActive(record!.status)) {
        this.ended = true;
        endedNow = true;
        this.settleFrom = Math.max(this.settleFrom ?? at, at);
      }
    }
    let changed = false;
    if (active && (same(active) || this.options.follow === 'any' || !prev)) {
      changed = !same(active) || prev!.status !== active.status || this.ended;
      this.watched = active;
      this.ended = false;
      this.lastActiveAt = at;
    }
    return { at, active, changed, watched: this.watched, endedNow, missing };
  }

  /** A GC's record in the list of GCs (its final record once it ended); undefined when the list no longer has it. */
  async recordOf(uuid: string, signal: AbortSignal): Promise<GarbageCollection | undefined> {
    return (await this.client.listGcs(this.registry, FINAL_RECORD_WINDOW, signal)).find((g) => g.uuid === uuid);
  }
}

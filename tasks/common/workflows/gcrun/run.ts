// One GC run in phases: acquire (start, adopt, skip, fail, or wait for another GC first), wait for
// ours, cancel on timeout, summarise. GC outcomes are results, never exceptions.
import { Logger } from '../../platform/output';
import { CancelledError, errorMessage } from '../../platform/errors';
import { LinkedDeadline, linkedDeadline, sleep } from '../../platform/retry';
import { formatDuration } from '../../platform/task';
import {
  DigitalOceanClient,
  GC_TYPES,
  GarbageCollection,
  GcAlreadyActiveError,
  describeGcStatus,
  gcOwnDurationSeconds,
  isTerminalGcStatus,
  parseDoTime,
} from '../../services/digitalocean';
import { GcWatcher, MISSING_GC_STATUS, countsAsActive } from '../gcwatch/watcher';
import { GcRunSettings } from './settings';
import { GcAction, GcDuration, RunEnd, TimelineEntry, gcRunOutputs, humanBytes, renderSummary } from './summary';

/** After a timeout, the cancel (cancelOnTimeout) gets this long on the job's own signal. */
const CANCEL_WINDOW_MS = 30_000;
/** After a timeout, reading past GCs for the summary gets this long. */
const SUMMARY_WINDOW_MS = 3_000;

export interface GcRunResult {
  /** Succeeded, SucceededWithIssues or Failed: the caller sets the task result. */
  outcome: 'succeeded' | 'withIssues' | 'failed';
  message: string;
  summary: string;
  outputs: Record<string, string>;
}

const STATUS_PROGRESS: Record<string, number> = {
  requested: 5,
  'waiting for write jwts to expire': 20,
  'scanning manifests': 50,
  'deleting unreferenced blobs': 75,
  cancelling: 90,
};

/**
 * Starts (or adopts) a GC, waits for it and times it. Never throws for GC
 * outcomes: the result says succeeded / withIssues / failed, with outputs and
 * the Markdown summary, so the task can report all of them first.
 */
export async function runGarbageCollection(client: DigitalOceanClient, settings: GcRunSettings, signal: AbortSignal, log: Logger): Promise<GcRunResult> {
  return new GcRun(client, settings, signal, log).run();
}

/** One GC run's state and phases: acquire (start, adopt, skip, fail, wait), wait, cancel on timeout, summarise. */
class GcRun {
  private readonly started = Date.now();
  private readonly deadline: number;
  private readonly pollMs: number;
  private readonly timeline: TimelineEntry[] = [];
  // One deadline over the whole run (resolve, start, wait), requests in flight included.
  private readonly runDeadline: LinkedDeadline;
  private readonly rs: AbortSignal;
  private registry = '';
  private ours: GarbageCollection | undefined;
  /** The newest record of our GC, or of the GC started elsewhere that we wait for. */
  private lastSeen: GarbageCollection | undefined;
  private waitingForOther = false;
  private phase = 'the DigitalOcean API (the registry)';
  private action: GcAction = 'none';
  private ourStart = Date.now();
  private startAttemptAt: number | undefined;
  private progressDone = false;
  /** The percentage last reported for our GC's status (kept as data, not read back from the log). */
  private lastPercent = 50;
  private lastPacing = '';

  constructor(
    private readonly client: DigitalOceanClient,
    private readonly settings: GcRunSettings,
    private readonly signal: AbortSignal,
    private readonly log: Logger,
  ) {
    this.deadline = this.started + settings.timeoutSeconds * 1000;
    this.pollMs = settings.pollIntervalSeconds * 1000;
    this.runDeadline = linkedDeadline(signal, settings.timeoutSeconds * 1000);
    this.rs = this.runDeadline.signal;
  }

  private note(text: string): void {
    this.timeline.push({ at: Date.now(), text });
    this.log.info(text);
  }

  async run(): Promise<GcRunResult> {
    try {
      return await this.main();
    } catch (err) {
      if (!(err instanceof CancelledError && this.runDeadline.expired() && !this.signal.aborted)) throw err;
      // The deadline ended a request in flight: the same timed-out result as the loop's own check.
      const waited = formatDuration((Date.now() - this.started) / 1000);
      if (this.ours) return this.timedOut(this.lastSeen ?? this.ours);
      if (this.waitingForOther && this.lastSeen) return this.timedOutOther(this.lastSeen);
      const mayHave = this.startAttemptAt !== undefined ? '; the start request was in flight, so a GC may have started' : '; no GC was started';
      return this.finish({
        outcome: 'failed',
        action: 'none',
        timedOut: true,
        message: `Timed out after ${waited} (timeout ${formatDuration(this.settings.timeoutSeconds)}): ${this.phase} gave no usable answer in time${mayHave}.`,
      });
    } finally {
      this.runDeadline.clear();
    }
  }

  /**
   * Acquire: start our GC, or find that an earlier start request of ours created it, or act on
   * one already running as ifAlreadyRunning says. A result when the run ends here; undefined once
   * `ours` is set.
   */
  private async acquire(): Promise<GcRunResult | undefined> {
    const wantedType = GC_TYPES[this.settings.gcType];
    for (let round = 0; !this.ours; round++) {
      this.phase = 'the DigitalOcean API (the active GC)';
      const active = await this.client.getActiveGc(this.registry, this.rs);
      const createdAt = active ? parseDoTime(active.created_at) : NaN;
      if (active && !isTerminalGcStatus(active.status) && this.startAttemptAt !== undefined && createdAt >= this.startAttemptAt - 2000) {
        // Our start request was refused as a duplicate after an earlier attempt failed in
        // transit (5xx, reset): the GC that attempt created is ours.
        this.ours = active;
        this.action = 'started';
        this.note(`GC ${active.uuid} on ${this.registry} was created by this task's earlier start request: ${describeGcStatus(active.status)}.`);
        break;
      }
      if (active && !isTerminalGcStatus(active.status)) {
        const desc = `GC ${active.uuid} (${describeGcStatus(active.status)}${active.type ? `, ${active.type}` : ''}) is already running on ${this.registry}`;
        if (this.settings.ifAlreadyRunning === 'fail') {
          this.note(`${desc}; ifAlreadyRunning is 'fail'.`);
          return this.finish({ outcome: 'failed', action: 'none', gc: active, message: `${desc} (ifAlreadyRunning: fail); no GC was started.` });
        }
        if (this.settings.ifAlreadyRunning === 'skip') {
          this.note(`${desc}; ifAlreadyRunning is 'skip': not starting another.`);
          return this.finish({ outcome: 'succeeded', action: 'skipped', gc: active, message: `${desc}; skipped (ifAlreadyRunning: skip).` });
        }
        if (this.settings.ifAlreadyRunning === 'adopt') {
          this.note(`${desc}; adopting it (ifAlreadyRunning: adopt): it is timed and reported as this task's GC.`);
          this.ours = active;
          this.action = 'adopted';
          const created = parseDoTime(active.created_at);
          this.ourStart = Number.isNaN(created) ? Date.now() : Math.min(Date.now(), created);
          break;
        }
        this.note(`${desc}; waiting for it to end before starting ours (ifAlreadyRunning: wait).`);
        this.waitingForOther = true;
        const other = await this.waitUntilEnded(active, false);
        this.waitingForOther = false;
        if (other.timedOut) return this.timedOutOther(other.gc);
        continue;
      }
      try {
        this.ourStart = Date.now();
        this.startAttemptAt = this.ourStart;
        this.phase = 'the DigitalOcean API (the start request)';
        this.ours = await this.client.startGc(this.registry, wantedType, this.rs);
        this.action = 'started';
        this.note(`Started GC ${this.ours.uuid} on ${this.registry} (${wantedType}): ${describeGcStatus(this.ours.status)}.`);
      } catch (err) {
        if (err instanceof GcAlreadyActiveError && round < 3) {
          this.note(`Starting a GC was refused because one is already active (${err.status}); looking again.`);
          continue;
        }
        throw err;
      }
    }
    return undefined;
  }

  private async main(): Promise<GcRunResult> {
    this.registry = await this.client.resolveRegistry(this.settings.registry, this.rs);
    const early = await this.acquire();
    if (early) return early;
    const gc = this.ours!;
    this.lastPercent = STATUS_PROGRESS[gc.status.toLowerCase()] ?? 5;
    this.log.progress(this.lastPercent, `GC ${gc.status}`);
    if (!this.settings.waitForCompletion) {
      return this.finish({
        outcome: 'succeeded',
        action: this.action,
        gc,
        message: `GC ${gc.uuid} ${this.action} on ${this.registry}; not waiting for it (waitForCompletion: false).`,
      });
    }
    const waited = await this.waitUntilEnded(gc, true);
    if (waited.timedOut) return this.timedOut(waited.gc);
    return this.ended(waited.gc);
  }

  private timedOutOther(gc: GarbageCollection): Promise<GcRunResult> {
    return this.finish({
      outcome: 'failed',
      action: 'none',
      gc,
      timedOut: true,
      message: `Timed out after ${formatDuration((Date.now() - this.started) / 1000)} waiting for GC ${gc.uuid} (started elsewhere, still ${describeGcStatus(gc.status)}) to end; no GC was started.`,
    });
  }

  /** Our GC outlived the timeout: cancel it when asked (the job's signal, its own short deadline). */
  private async timedOut(last: GarbageCollection): Promise<GcRunResult> {
    let final = last;
    let cancelNote = 'it is still running (cancelOnTimeout: false)';
    let cancelAccepted = false;
    if (this.settings.cancelOnTimeout) {
      const cancelDeadline = linkedDeadline(this.signal, CANCEL_WINDOW_MS);
      try {
        this.note(`Timed out: cancelling GC ${final.uuid}.`);
        final = await this.client.cancelGc(this.registry, final.uuid, cancelDeadline.signal);
        this.note(`Cancel requested: '${final.status}'.`);
        cancelAccepted = ['cancelling', 'cancelled'].includes(final.status.toLowerCase());
        // Give the cancel a short while to land (bounded; the task already timed out).
        const watcher = this.watcherFor(final);
        while (countsAsActive(final.status)) {
          await sleep(this.client.pollDelayMs(this.pollMs), cancelDeadline.signal);
          const look = await watcher.look(cancelDeadline.signal);
          const seen = look.missing ? undefined : look.watched;
          if (seen && seen.status !== final.status) this.note(`GC ${final.uuid}: ${describeGcStatus(seen.status)}.`);
          if (seen) final = seen;
          if (look.missing) break;
        }
      } catch (err) {
        if (!(err instanceof CancelledError && cancelDeadline.expired() && !this.signal.aborted)) throw err;
        this.note(`The cancel of GC ${final.uuid} did not complete within ${CANCEL_WINDOW_MS / 1000}s.`);
      } finally {
        cancelDeadline.clear();
      }
      cancelNote = `cancel requested, now '${final.status}'`;
    }
    if (!cancelAccepted) {
      const ran = (Date.now() - this.ourStart) / 1000;
      this.log.warn(
        `GC ${final.uuid} on ${this.registry} has run ${formatDuration(ran)} without finishing (timeout ${formatDuration(this.settings.timeoutSeconds)}).`,
      );
    }
    return this.finish({
      outcome: 'failed',
      action: this.action,
      gc: final,
      timedOut: true,
      message: `GC ${final.uuid} did not finish within ${formatDuration(this.settings.timeoutSeconds)} (last status ${describeGcStatus(last.status)}); ${cancelNote}.`,
    });
  }

  private ended(final: GarbageCollection): Promise<GcRunResult> {
    const status = final.status.toLowerCase();
    const { seconds } = this.durationOf(final, this.ourStart);
    if (seconds > this.settings.warnAfterSeconds) {
      this.log.warn(
        `GC ${final.uuid} on ${this.registry} took ${formatDuration(seconds)}, longer than warnAfterMinutes (${this.settings.warnAfterSeconds / 60}).`,
      );
    }
    if (status === 'failed' || status === 'cancelled') {
      const msg = `GC ${final.uuid} on ${this.registry} ended '${status}' after ${formatDuration(seconds)}.`;
      if (!this.settings.failOnGcFailure) this.log.warn(`${msg} (failOnGcFailure: false)`);
      return this.finish({ outcome: this.settings.failOnGcFailure ? 'failed' : 'withIssues', action: this.action, gc: final, message: msg });
    }
    return this.finish({
      outcome: 'succeeded',
      action: this.action,
      gc: final,
      message: `GC ${final.uuid} on ${this.registry} ${status} in ${formatDuration(seconds)}: ${final.blobs_deleted} blob(s) deleted, ${humanBytes(final.freed_bytes)} freed.`,
    });
  }

  // ---- helpers (closures over the run) ----

  private durationOf(gc: GarbageCollection, wallStart: number): GcDuration {
    const own = isTerminalGcStatus(gc.status) ? gcOwnDurationSeconds(gc) : undefined;
    if (own !== undefined) return { seconds: own, source: "GC's own timestamps" };
    return { seconds: Math.max(0, Math.round((Date.now() - wallStart) / 1000)), source: 'wall clock' };
  }

  /** The one GC watcher, on `gc` alone, until its record is terminal. */
  private watcherFor(gc: GarbageCollection): GcWatcher {
    const w = new GcWatcher(this.client, this.registry, { follow: 'one', untilTerminal: true });
    w.watch(gc);
    return w;
  }

  /**
   * Polls (through the one GC watcher) until the GC is terminal; mine=true reports progress. A
   * status this task does not know counts as active and is named the first time it is seen.
   */
  private async waitUntilEnded(gc: GarbageCollection, mine: boolean): Promise<{ gc: GarbageCollection; timedOut: boolean }> {
    let last = gc;
    this.lastSeen = gc;
    this.phase = "the DigitalOcean API (the GC's status)";
    const watcher = this.watcherFor(gc);
    let warnedLong = false;
    const since = mine ? this.ourStart : Date.now();
    while (countsAsActive(last.status)) {
      const now = Date.now();
      if (now >= this.deadline) return { gc: last, timedOut: true };
      const delay = this.client.pollDelayMs(this.pollMs);
      this.announcePacing(delay);
      await sleep(Math.min(delay, Math.max(0, this.deadline - now)), this.rs);
      if (Date.now() >= this.deadline) return { gc: last, timedOut: true };
      const look = await watcher.look(this.rs);
      if (look.missing) {
        this.log.warn(`GC ${last.uuid} is no longer the active GC but is missing from the list of GCs; its final status is unknown.`);
        return { gc: { ...last, status: MISSING_GC_STATUS }, timedOut: false };
      }
      const seen = look.watched ?? last;
      if (seen.status !== last.status) {
        const at = mine ? ` after ${formatDuration((Date.now() - since) / 1000)}` : '';
        this.note(`GC ${seen.uuid}${mine ? '' : ' (started elsewhere)'}: ${describeGcStatus(seen.status)}${at}.`);
        if (mine) this.reportProgress(seen.status);
      }
      if (mine && !warnedLong && Date.now() - since > this.settings.warnAfterSeconds * 1000 && countsAsActive(seen.status)) {
        warnedLong = true;
        this.log.info(
          `GC ${seen.uuid} is still ${describeGcStatus(seen.status)} after ${formatDuration((Date.now() - since) / 1000)} (warnAfterMinutes: ${this.settings.warnAfterSeconds / 60}).`,
        );
      }
      last = seen;
      this.lastSeen = seen;
    }
    return { gc: last, timedOut: false };
  }

  /** Says once when pacing slows polls down, and when it stops. */
  private announcePacing(delay: number): void {
    if (this.client.pacing === this.lastPacing) return;
    this.lastPacing = this.client.pacing;
    this.log.info(
      this.lastPacing
        ? `Polling every ${formatDuration(delay / 1000)} instead of ${this.settings.pollIntervalSeconds}s: ${this.lastPacing}.`
        : `Polling every ${this.settings.pollIntervalSeconds}s again.`,
    );
  }

  /** Reports our GC's status as progress; a status without a step keeps the last step's percentage. */
  private reportProgress(status: string): void {
    const pct = isTerminalGcStatus(status) ? 100 : STATUS_PROGRESS[status.toLowerCase()];
    if (pct !== undefined) this.lastPercent = pct;
    this.log.progress(this.lastPercent, `GC ${status}`);
    if (pct === 100) this.progressDone = true;
  }

  /** Summarise: the outputs and the summary from how the run ended (the past GCs read within a short window). */
  private async finish(r: RunEnd): Promise<GcRunResult> {
    const gc = r.gc;
    const terminal = gc ? isTerminalGcStatus(gc.status) : false;
    const dur = gc && (r.action === 'started' || r.action === 'adopted') ? this.durationOf(gc, this.ourStart) : undefined;
    if ((terminal || r.timedOut) && !this.progressDone) this.log.progress(100, gc ? `GC ${gc.status}` : 'done');
    let history: GarbageCollection[] = [];
    // The summary's history is worth a few seconds at most once the run's time is up.
    const within = linkedDeadline(this.signal, r.timedOut || this.rs.aborted ? SUMMARY_WINDOW_MS : Math.max(SUMMARY_WINDOW_MS, this.deadline - Date.now()));
    try {
      if (this.registry) history = (await this.client.listGcs(this.registry, 11, within.signal)).filter((g) => !gc || g.uuid !== gc.uuid);
    } catch (err) {
      if (this.signal.aborted) throw err;
      this.log.info(`Could not read past GCs for the summary: ${errorMessage(err)}`);
    } finally {
      within.clear();
    }
    const outputs = gcRunOutputs(r, dur, this.settings.gcType);
    return {
      outcome: r.outcome,
      message: r.message,
      summary: renderSummary(this.registry, r, dur, history, this.timeline, this.started, outputs),
      outputs,
    };
  }
}

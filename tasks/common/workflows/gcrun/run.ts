// One GC run in phases: resolve the registry, acquire (start, adopt, skip, fail, or wait for another
// GC first), wait for ours, cancel on timeout, summarise. Each phase takes what the earlier ones
// returned and returns its own value, or how the run ended (an Ending); nothing is kept in a shared
// mutable object. GC outcomes are results, never exceptions.
import { Logger, outputValues } from '../../platform/output';
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
import { GC_RUN_OUTPUTS, GcAction, GcDuration, GcReport, RunEnd, TimelineEntry, humanBytes, renderSummary } from './summary';

/** After a timeout, the cancel (cancelOnTimeout) gets this long on the job's own signal. */
const CANCEL_WINDOW_MS = 30_000;
/** After a timeout, reading past GCs for the summary gets this long. */
const SUMMARY_WINDOW_MS = 3_000;

export interface GcRunResult {
  /** Succeeded, SucceededWithIssues or Failed: the caller sets the task result. */
  outcome: 'succeeded' | 'withIssues' | 'failed';
  message: string;
  summary: string;
  /** What the outputs read (GC_RUN_OUTPUTS). */
  report: GcReport;
}

const STATUS_PROGRESS: Record<string, number> = {
  requested: 5,
  'waiting for write jwts to expire': 20,
  'scanning manifests': 50,
  'deleting unreferenced blobs': 75,
  cancelling: 90,
};

/** What every phase reads, fixed when the run starts; the timeline is the run's append-only journal. */
interface Run {
  readonly client: DigitalOceanClient;
  readonly settings: GcRunSettings;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly started: number;
  readonly deadline: number;
  readonly pollMs: number;
  /** One deadline over the whole run (resolve, start, wait), requests in flight included. */
  readonly runDeadline: LinkedDeadline;
  readonly timeline: TimelineEntry[];
}

/** The GC this run times and reports: started here or adopted, and since when it counts. */
interface Acquired {
  gc: GarbageCollection;
  action: GcAction;
  ourStart: number;
  /** The pacing note last announced (kept from wait to wait). */
  pacing: string;
}

/** How the run ended, with what the summary needs of the phases before. */
interface Ending {
  end: RunEnd;
  registry: string;
  ourStart?: number;
  /** Whether the 100% progress line was printed already. */
  progressDone?: boolean;
}

/** What one wait for a GC to end returns. */
interface Waited {
  gc: GarbageCollection;
  timedOut: boolean;
  progressDone: boolean;
  pacing: string;
}

/**
 * Starts (or adopts) a GC, waits for it and times it. Never throws for GC
 * outcomes: the result says succeeded / withIssues / failed, with what the
 * outputs read and the Markdown summary, so the task can report all of them first.
 */
export async function runGarbageCollection(client: DigitalOceanClient, settings: GcRunSettings, signal: AbortSignal, log: Logger): Promise<GcRunResult> {
  const started = Date.now();
  const run: Run = {
    client,
    settings,
    signal,
    log,
    started,
    deadline: started + settings.timeoutSeconds * 1000,
    pollMs: settings.pollIntervalSeconds * 1000,
    runDeadline: linkedDeadline(signal, settings.timeoutSeconds * 1000),
    timeline: [],
  };
  try {
    return await finish(run, await phases(run));
  } finally {
    run.runDeadline.clear();
  }
}

function note(run: Run, text: string): void {
  run.timeline.push({ at: Date.now(), text });
  run.log.info(text);
}

/** Whether `err` is the run's own deadline ending a request in flight (not the job's cancel). */
function runDeadlineEnded(run: Run, err: unknown): boolean {
  return err instanceof CancelledError && run.runDeadline.expired() && !run.signal.aborted;
}

/** The phases in order, each fed what the earlier ones returned. */
async function phases(run: Run): Promise<Ending> {
  const registry = await resolveRegistry(run);
  if (typeof registry !== 'string') return registry;
  const acquired = await acquire(run, registry);
  if ('end' in acquired) return acquired;
  const { gc, action, ourStart } = acquired;
  const percent = STATUS_PROGRESS[gc.status.toLowerCase()] ?? 5;
  run.log.progress(percent, `GC ${gc.status}`);
  if (!run.settings.waitForCompletion) {
    const message = `GC ${gc.uuid} ${action} on ${registry}; not waiting for it (waitForCompletion: false).`;
    return { end: { outcome: 'succeeded', action, gc, message }, registry, ourStart };
  }
  const waited = await waitUntilEnded(run, registry, gc, { mine: true, since: ourStart, percent, pacing: acquired.pacing });
  if (waited.timedOut) return timedOut(run, registry, acquired, waited.gc);
  return ended(run, registry, acquired, waited);
}

/** The run timed out before it had a GC to wait for: `phase` gave no usable answer in time. */
function noAnswer(run: Run, registry: string, phase: string, startAttempted: boolean): Ending {
  const waited = formatDuration((Date.now() - run.started) / 1000);
  const mayHave = startAttempted ? '; the start request was in flight, so a GC may have started' : '; no GC was started';
  const message = `Timed out after ${waited} (timeout ${formatDuration(run.settings.timeoutSeconds)}): ${phase} gave no usable answer in time${mayHave}.`;
  return { end: { outcome: 'failed', action: 'none', timedOut: true, message }, registry };
}

/** Resolve: the registry's name, or the timed-out ending when no answer came in time. */
async function resolveRegistry(run: Run): Promise<string | Ending> {
  try {
    return await run.client.resolveRegistry(run.settings.registry, run.runDeadline.signal);
  } catch (err) {
    if (!runDeadlineEnded(run, err)) throw err;
    return noAnswer(run, '', 'the DigitalOcean API (the registry)', false);
  }
}

/**
 * Acquire: start our GC, or find that an earlier start request of ours created it, or act on one
 * already running as ifAlreadyRunning says. The GC this run times, or how the run ended here.
 */
async function acquire(run: Run, registry: string): Promise<Acquired | Ending> {
  const wantedType = GC_TYPES[run.settings.gcType];
  const rs = run.runDeadline.signal;
  // What a timeout in flight reports: the request it ended, and whether a start request was sent.
  let phase = 'the DigitalOcean API (the active GC)';
  let startAttemptAt: number | undefined;
  let pacing = '';
  try {
    for (let round = 0; ; round++) {
      phase = 'the DigitalOcean API (the active GC)';
      const active = await run.client.getActiveGc(registry, rs);
      if (active && !isTerminalGcStatus(active.status)) {
        const decided = await onActiveGc(run, registry, active, startAttemptAt, pacing);
        if ('waitedFor' in decided) {
          pacing = decided.pacing;
          continue;
        }
        return decided;
      }
      try {
        startAttemptAt = Date.now();
        phase = 'the DigitalOcean API (the start request)';
        const gc = await run.client.startGc(registry, wantedType, rs);
        note(run, `Started GC ${gc.uuid} on ${registry} (${wantedType}): ${describeGcStatus(gc.status)}.`);
        return { gc, action: 'started', ourStart: startAttemptAt, pacing };
      } catch (err) {
        if (!(err instanceof GcAlreadyActiveError && round < 3)) throw err;
        note(run, `Starting a GC was refused because one is already active (${err.status}); looking again.`);
      }
    }
  } catch (err) {
    if (!runDeadlineEnded(run, err)) throw err;
    return noAnswer(run, registry, phase, startAttemptAt !== undefined);
  }
}

/** A GC is active: ours after all, or adopted, or the run ends (fail, skip, a timeout), or it was waited for. */
async function onActiveGc(
  run: Run,
  registry: string,
  active: GarbageCollection,
  startAttemptAt: number | undefined,
  pacing: string,
): Promise<Acquired | Ending | { waitedFor: GarbageCollection; pacing: string }> {
  const createdAt = parseDoTime(active.created_at);
  if (startAttemptAt !== undefined && createdAt >= startAttemptAt - 2000) {
    // Our start request was refused as a duplicate after an earlier attempt failed in
    // transit (5xx, reset): the GC that attempt created is ours.
    note(run, `GC ${active.uuid} on ${registry} was created by this task's earlier start request: ${describeGcStatus(active.status)}.`);
    return { gc: active, action: 'started', ourStart: startAttemptAt, pacing };
  }
  const desc = `GC ${active.uuid} (${describeGcStatus(active.status)}${active.type ? `, ${active.type}` : ''}) is already running on ${registry}`;
  const ifRunning = run.settings.ifAlreadyRunning;
  if (ifRunning === 'fail') {
    note(run, `${desc}; ifAlreadyRunning is 'fail'.`);
    return { end: { outcome: 'failed', action: 'none', gc: active, message: `${desc} (ifAlreadyRunning: fail); no GC was started.` }, registry };
  }
  if (ifRunning === 'skip') {
    note(run, `${desc}; ifAlreadyRunning is 'skip': not starting another.`);
    return { end: { outcome: 'succeeded', action: 'skipped', gc: active, message: `${desc}; skipped (ifAlreadyRunning: skip).` }, registry };
  }
  if (ifRunning === 'adopt') {
    note(run, `${desc}; adopting it (ifAlreadyRunning: adopt): it is timed and reported as this task's GC.`);
    return { gc: active, action: 'adopted', ourStart: Number.isNaN(createdAt) ? Date.now() : Math.min(Date.now(), createdAt), pacing };
  }
  note(run, `${desc}; waiting for it to end before starting ours (ifAlreadyRunning: wait).`);
  const other = await waitUntilEnded(run, registry, active, { mine: false, since: Date.now(), percent: 0, pacing });
  if (other.timedOut) return timedOutOther(run, registry, other.gc);
  return { waitedFor: other.gc, pacing: other.pacing };
}

function timedOutOther(run: Run, registry: string, gc: GarbageCollection): Ending {
  const waited = formatDuration((Date.now() - run.started) / 1000);
  const message = `Timed out after ${waited} waiting for GC ${gc.uuid} (started elsewhere, still ${describeGcStatus(gc.status)}) to end; no GC was started.`;
  return { end: { outcome: 'failed', action: 'none', gc, timedOut: true, message }, registry };
}

/** Our GC outlived the timeout: cancel it when asked (the job's signal, its own short deadline). */
async function timedOut(run: Run, registry: string, ours: Acquired, last: GarbageCollection): Promise<Ending> {
  const { settings, log } = run;
  const cancel = settings.cancelOnTimeout ? await cancelOurs(run, registry, last) : { gc: last, accepted: false };
  const final = cancel.gc;
  const cancelNote = settings.cancelOnTimeout ? `cancel requested, now '${final.status}'` : 'it is still running (cancelOnTimeout: false)';
  if (!cancel.accepted) {
    const ran = (Date.now() - ours.ourStart) / 1000;
    log.warn(`GC ${final.uuid} on ${registry} has run ${formatDuration(ran)} without finishing (timeout ${formatDuration(settings.timeoutSeconds)}).`);
  }
  const message = `GC ${final.uuid} did not finish within ${formatDuration(settings.timeoutSeconds)} (last status ${describeGcStatus(last.status)}); ${cancelNote}.`;
  return { end: { outcome: 'failed', action: ours.action, gc: final, timedOut: true, message }, registry, ourStart: ours.ourStart };
}

/** The cancel (cancelOnTimeout), given a short while to land: the GC's last record, and whether the cancel was accepted. */
async function cancelOurs(run: Run, registry: string, last: GarbageCollection): Promise<{ gc: GarbageCollection; accepted: boolean }> {
  let final = last;
  let accepted = false;
  const cancelDeadline = linkedDeadline(run.signal, CANCEL_WINDOW_MS);
  try {
    note(run, `Timed out: cancelling GC ${final.uuid}.`);
    final = await run.client.cancelGc(registry, final.uuid, cancelDeadline.signal);
    note(run, `Cancel requested: '${final.status}'.`);
    accepted = ['cancelling', 'cancelled'].includes(final.status.toLowerCase());
    // Give the cancel a short while to land (bounded; the task already timed out).
    const watcher = watcherFor(run, registry, final);
    while (countsAsActive(final.status)) {
      await sleep(run.client.pollDelayMs(run.pollMs), cancelDeadline.signal);
      const look = await watcher.look(cancelDeadline.signal);
      const seen = look.missing ? undefined : look.watched;
      if (seen && seen.status !== final.status) note(run, `GC ${final.uuid}: ${describeGcStatus(seen.status)}.`);
      if (seen) final = seen;
      if (look.missing) break;
    }
  } catch (err) {
    if (!(err instanceof CancelledError && cancelDeadline.expired() && !run.signal.aborted)) throw err;
    note(run, `The cancel of GC ${final.uuid} did not complete within ${CANCEL_WINDOW_MS / 1000}s.`);
  } finally {
    cancelDeadline.clear();
  }
  return { gc: final, accepted };
}

/** Our GC ended: failed or cancelled (failOnGcFailure decides), or done; a warning when it took long. */
function ended(run: Run, registry: string, ours: Acquired, waited: Waited): Ending {
  const { settings, log } = run;
  const final = waited.gc;
  const status = final.status.toLowerCase();
  const { seconds } = durationOf(final, ours.ourStart);
  const ending = (end: RunEnd): Ending => ({ end, registry, ourStart: ours.ourStart, progressDone: waited.progressDone });
  if (seconds > settings.warnAfterSeconds) {
    log.warn(`GC ${final.uuid} on ${registry} took ${formatDuration(seconds)}, longer than warnAfterMinutes (${settings.warnAfterSeconds / 60}).`);
  }
  if (status === 'failed' || status === 'cancelled') {
    const message = `GC ${final.uuid} on ${registry} ended '${status}' after ${formatDuration(seconds)}.`;
    if (!settings.failOnGcFailure) log.warn(`${message} (failOnGcFailure: false)`);
    return ending({ outcome: settings.failOnGcFailure ? 'failed' : 'withIssues', action: ours.action, gc: final, message });
  }
  const freed = `${final.blobs_deleted} blob(s) deleted, ${humanBytes(final.freed_bytes)} freed`;
  return ending({
    outcome: 'succeeded',
    action: ours.action,
    gc: final,
    message: `GC ${final.uuid} on ${registry} ${status} in ${formatDuration(seconds)}: ${freed}.`,
  });
}

function durationOf(gc: GarbageCollection, wallStart: number): GcDuration {
  const own = isTerminalGcStatus(gc.status) ? gcOwnDurationSeconds(gc) : undefined;
  if (own !== undefined) return { seconds: own, source: "GC's own timestamps" };
  return { seconds: Math.max(0, Math.round((Date.now() - wallStart) / 1000)), source: 'wall clock' };
}

/** The one GC watcher, on `gc` alone, until its record is terminal. */
function watcherFor(run: Run, registry: string, gc: GarbageCollection): GcWatcher {
  const w = new GcWatcher(run.client, registry, { follow: 'one', untilTerminal: true });
  w.watch(gc);
  return w;
}

/** How one wait reports: ours (progress, the long-run note) or another's, and the state it carries on. */
interface WaitOptions {
  mine: boolean;
  since: number;
  /** The percentage last reported for our GC's status (a status without a step keeps it). */
  percent: number;
  pacing: string;
}

/**
 * Polls (through the one GC watcher) until the GC is terminal; mine=true reports progress. A
 * status this task does not know counts as active and is named the first time it is seen. The
 * run's deadline, in the loop's own check or ending a request in flight, is the timed-out answer.
 */
async function waitUntilEnded(run: Run, registry: string, gc: GarbageCollection, options: WaitOptions): Promise<Waited> {
  const { log, settings } = run;
  const { mine, since } = options;
  const rs = run.runDeadline.signal;
  const watcher = watcherFor(run, registry, gc);
  let last = gc;
  let percent = options.percent;
  let pacing = options.pacing;
  let progressDone = false;
  let warnedLong = false;
  const result = (g: GarbageCollection, timedOut: boolean): Waited => ({ gc: g, timedOut, progressDone, pacing });
  try {
    while (countsAsActive(last.status)) {
      const now = Date.now();
      if (now >= run.deadline) return result(last, true);
      const delay = run.client.pollDelayMs(run.pollMs);
      pacing = announcePacing(run, pacing, delay);
      await sleep(Math.min(delay, Math.max(0, run.deadline - now)), rs);
      if (Date.now() >= run.deadline) return result(last, true);
      const look = await watcher.look(rs);
      if (look.missing) {
        log.warn(`GC ${last.uuid} is no longer the active GC but is missing from the list of GCs; its final status is unknown.`);
        return result({ ...last, status: MISSING_GC_STATUS }, false);
      }
      const seen = look.watched ?? last;
      if (seen.status !== last.status) {
        const at = mine ? ` after ${formatDuration((Date.now() - since) / 1000)}` : '';
        note(run, `GC ${seen.uuid}${mine ? '' : ' (started elsewhere)'}: ${describeGcStatus(seen.status)}${at}.`);
        if (mine) ({ percent, progressDone } = reportProgress(run, seen.status, percent));
      }
      if (mine && !warnedLong && Date.now() - since > settings.warnAfterSeconds * 1000 && countsAsActive(seen.status)) {
        warnedLong = true;
        const still = `GC ${seen.uuid} is still ${describeGcStatus(seen.status)} after ${formatDuration((Date.now() - since) / 1000)}`;
        log.info(`${still} (warnAfterMinutes: ${settings.warnAfterSeconds / 60}).`);
      }
      last = seen;
    }
  } catch (err) {
    if (!runDeadlineEnded(run, err)) throw err;
    return result(last, true);
  }
  return result(last, false);
}

/** Says once when pacing slows polls down, and when it stops; returns the pacing now announced. */
function announcePacing(run: Run, announced: string, delay: number): string {
  const pacing = run.client.pacing;
  if (pacing === announced) return announced;
  const every = run.settings.pollIntervalSeconds;
  run.log.info(pacing ? `Polling every ${formatDuration(delay / 1000)} instead of ${every}s: ${pacing}.` : `Polling every ${every}s again.`);
  return pacing;
}

/** Reports our GC's status as progress; a status without a step keeps the last step's percentage. */
function reportProgress(run: Run, status: string, lastPercent: number): { percent: number; progressDone: boolean } {
  const pct = isTerminalGcStatus(status) ? 100 : STATUS_PROGRESS[status.toLowerCase()];
  const percent = pct ?? lastPercent;
  run.log.progress(percent, `GC ${status}`);
  return { percent, progressDone: pct === 100 };
}

/** Summarise: what the outputs read and the summary, from how the run ended (the past GCs read within a short window). */
async function finish(run: Run, ending: Ending): Promise<GcRunResult> {
  const { end: r, registry } = ending;
  const gc = r.gc;
  const terminal = gc ? isTerminalGcStatus(gc.status) : false;
  const started = r.action === 'started' || r.action === 'adopted';
  const duration = gc && started && ending.ourStart !== undefined ? durationOf(gc, ending.ourStart) : undefined;
  if ((terminal || r.timedOut) && !ending.progressDone) run.log.progress(100, gc ? `GC ${gc.status}` : 'done');
  let history: GarbageCollection[] = [];
  // The summary's history is worth a few seconds at most once the run's time is up.
  const late = r.timedOut || run.runDeadline.signal.aborted;
  const within = linkedDeadline(run.signal, late ? SUMMARY_WINDOW_MS : Math.max(SUMMARY_WINDOW_MS, run.deadline - Date.now()));
  try {
    if (registry) history = (await run.client.listGcs(registry, 11, within.signal)).filter((g) => !gc || g.uuid !== gc.uuid);
  } catch (err) {
    if (run.signal.aborted) throw err;
    run.log.info(`Could not read past GCs for the summary: ${errorMessage(err)}`);
  } finally {
    within.clear();
  }
  const report: GcReport = { end: r, duration, startedType: run.settings.gcType };
  const summary = renderSummary(registry, r, duration, history, run.timeline, run.started, outputValues(GC_RUN_OUTPUTS, report));
  return { outcome: r.outcome, message: r.message, summary, report };
}

// The guard's side of the GC watcher (workflows/gcwatch): what each look changes in the guard's
// state, the tail window of a GC that ended just before the guard started, and the estimate of what is left.
import { formatDuration } from '../../platform/task';
import { DigitalOceanClient, GarbageCollection, describeGcStatus, gcOwnDurationSeconds, median, parseDoTime } from '../../services/digitalocean';
import { DO_TIMESTAMP_RESOLUTION_MS, GcWatcher, countsAsActive } from '../gcwatch/watcher';
import { GuardSettings } from './settings';
import { GuardState, during } from './state';

/** One look at the active GC (through the one GC watcher), and what it changes in the state. */
export async function pollGc(
  client: DigitalOceanClient,
  settings: GuardSettings,
  st: GuardState,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<void> {
  const registry = st.registry;
  const watcher = (st.watcher ??= new GcWatcher(client, registry, { follow: 'any', untilTerminal: false }));
  const look = await during(st, 'the DigitalOcean API (active GC)', () => watcher.look(signal));
  st.polls++;
  const now = look.at;
  st.firstAnswerAt ??= now;
  st.lastGcPollAt = now;
  if (look.endedNow) {
    const final = look.missing ? undefined : look.watched;
    st.observed = final?.status ?? 'ended';
    const dur = final && !countsAsActive(final.status) ? gcOwnDurationSeconds(final) : undefined;
    log(`GC ${final?.uuid ?? watcher.watched?.uuid} ended: ${st.observed}${dur !== undefined ? ` after ${formatDuration(dur)}` : ''}; settling from now.`);
  }
  const gc = look.active;
  if (gc) {
    if (look.changed) {
      const since = parseDoTime(gc.created_at);
      log(
        `GC ${gc.uuid} on ${registry} is ${describeGcStatus(gc.status)}${Number.isNaN(since) ? '' : ` (started ${formatDuration((now - since) / 1000)} ago)`}; waiting.`,
      );
    }
    const firstSight = st.current?.uuid !== gc.uuid;
    st.gcActiveNow = true;
    st.gcWasActive = true;
    st.inactiveSince = undefined;
    st.observed = gc.status;
    st.current = gc;
    if (firstSight && !st.estimated) {
      st.estimated = true;
      estimateRemaining(st.history, gc, settings, log);
    }
    return;
  }
  if (!st.current && st.polls === 1) {
    log(`No GC is active on ${registry}.`);
    if (settings.settleSeconds > 0) await recentTail(settings, st, signal, log);
  }
  if (st.inactiveSince === undefined) st.inactiveSince = now;
  st.gcActiveNow = false;
}

/**
 * A GC that ended within settleSeconds before the first poll still has its tail window, counted
 * from its own end (its updated_at plus the timestamps' one-second resolution). An old entry, even
 * a non-terminal one the active-GC endpoint no longer reports, triggers nothing.
 */
async function recentTail(settings: GuardSettings, st: GuardState, signal: AbortSignal, log: (line: string) => void): Promise<void> {
  const settleMs = settings.settleSeconds * 1000;
  let recent = st.history[0];
  const watcher = st.watcher;
  if (!recent || !watcher) return;
  if (countsAsActive(recent.status)) {
    // Active in the list a moment ago, gone from the active endpoint now: its final record says when it ended.
    const uuid = recent.uuid;
    recent = (await during(st, 'the DigitalOcean API (list of GCs)', () => watcher.recordOf(uuid, signal))) ?? recent;
  }
  const now = Date.now();
  const at = parseDoTime(recent.updated_at);
  if (Number.isNaN(at) || Math.abs(now - at) >= settleMs + DO_TIMESTAMP_RESOLUTION_MS) return;
  const from = watcher.endedBeforeFirstLook(recent, now);
  if (now - from >= settleMs) return;
  const ago = formatDuration(Math.max(0, now - at) / 1000);
  if (!countsAsActive(recent.status)) {
    st.observed = recent.status;
    log(`GC ${recent.uuid} ended ${ago} ago (${recent.status}); waiting out the rest of settleSeconds (${settings.settleSeconds}s).`);
  } else {
    log(`GC ${recent.uuid} was ${describeGcStatus(recent.status)} ${ago} ago; waiting out the rest of settleSeconds (${settings.settleSeconds}s).`);
  }
}

/** Logs how much longer an active GC should take, from the median of past GC durations. */
function estimateRemaining(history: GarbageCollection[], gc: GarbageCollection, settings: GuardSettings, log: (line: string) => void): void {
  const past = history
    .filter((g) => g.uuid !== gc.uuid && !countsAsActive(g.status))
    .slice(0, 10)
    .map((g) => gcOwnDurationSeconds(g))
    .filter((d): d is number => d !== undefined);
  const med = median(past);
  if (med === undefined) {
    log('No past GCs to estimate the remaining wait from.');
    return;
  }
  const startedAt = parseDoTime(gc.created_at);
  const elapsed = Number.isNaN(startedAt) ? 0 : Math.max(0, (Date.now() - startedAt) / 1000);
  const left = med - elapsed;
  if (left > 0) {
    log(
      `Estimate: the last ${past.length} GC(s) took a median of ${formatDuration(med)}; this one has run ${formatDuration(elapsed)}, so about ${formatDuration(left)} more, plus ${settings.settleSeconds}s to settle.`,
    );
  } else {
    log(`Estimate: this GC has run ${formatDuration(elapsed)}, longer than the median of the last ${past.length} (${formatDuration(med)}); no estimate.`);
  }
}

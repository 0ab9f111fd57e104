// The GC watcher: one look at the active GC at a time, what it changes in the guard's state, the
// tail window of a GC that ended just before the guard started, and the estimate of what is left.
import { formatDuration } from '../../platform/task';
import { DigitalOceanClient, GarbageCollection, gcOwnDurationSeconds, isTerminalGcStatus, median, parseDoTime } from '../../services/digitalocean';
import { GuardSettings } from './settings';
import { GuardState, during } from './state';

/** One look at the active GC, and what it changes in the state. */
export async function pollGc(
  client: DigitalOceanClient,
  settings: GuardSettings,
  st: GuardState,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<void> {
  const registry = st.registry;
  const gc = await during(st, 'the DigitalOcean API (active GC)', () => client.getActiveGc(registry, signal));
  st.polls++;
  const now = Date.now();
  st.firstAnswerAt ??= now;
  st.lastGcPollAt = now;
  if (gc !== undefined && !isTerminalGcStatus(gc.status)) {
    const firstSight = !st.current || st.current.uuid !== gc.uuid;
    if (firstSight || st.current!.status !== gc.status) {
      const since = parseDoTime(gc.created_at);
      log(`GC ${gc.uuid} on ${registry} is '${gc.status}'${Number.isNaN(since) ? '' : ` (started ${formatDuration((now - since) / 1000)} ago)`}; waiting.`);
    }
    st.gcActiveNow = true;
    st.gcWasActive = true;
    st.lastActiveAt = now;
    st.inactiveSince = undefined;
    st.observed = gc.status;
    st.current = gc;
    st.finalRead = false;
    if (firstSight && !st.estimated) {
      st.estimated = true;
      estimateRemaining(st.history, gc, settings, log);
    }
    return;
  }
  if (st.current && !st.finalRead) {
    // The GC we watched has ended: its final status comes from the list.
    st.finalRead = true;
    const cur = st.current;
    const final = (await during(st, 'the DigitalOcean API (list of GCs)', () => client.listGcs(registry, 5, signal))).find((g) => g.uuid === cur.uuid);
    st.observed = final?.status ?? (gc && gc.uuid === cur.uuid ? gc.status : 'ended');
    const dur = final ? gcOwnDurationSeconds(final) : undefined;
    // Settle from the GC's own end (its final updated_at), not from our last look at it.
    const endedAt = final && isTerminalGcStatus(final.status) ? parseDoTime(final.updated_at) : NaN;
    if (!Number.isNaN(endedAt) && st.lastActiveAt !== undefined) st.lastActiveAt = Math.min(now, Math.max(st.lastActiveAt, endedAt));
    log(`GC ${cur.uuid} ended: ${st.observed}${dur !== undefined ? ` after ${formatDuration(dur)}` : ''}.`);
  } else if (!st.current && st.polls === 1) {
    log(`No GC is active on ${registry}.`);
    if (settings.settleSeconds > 0) await recentTail(client, settings, st, signal, log);
  }
  if (st.inactiveSince === undefined) st.inactiveSince = now;
  st.gcActiveNow = false;
}

/**
 * A GC that ended (or was last updated while active) within settleSeconds before the first poll
 * still has its tail window, measured from its own updated_at. An old entry, even a non-terminal
 * one the active-GC endpoint no longer reports, triggers nothing.
 */
async function recentTail(
  client: DigitalOceanClient,
  settings: GuardSettings,
  st: GuardState,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<void> {
  const settleMs = settings.settleSeconds * 1000;
  let recent = st.history[0];
  if (!recent) return;
  if (!isTerminalGcStatus(recent.status)) {
    // Active in the list a moment ago, gone from the active endpoint now: its final record says when it ended.
    const uuid = recent.uuid;
    recent = (await during(st, 'the DigitalOcean API (list of GCs)', () => client.listGcs(st.registry, 5, signal))).find((g) => g.uuid === uuid) ?? recent;
  }
  const now = Date.now();
  const at = parseDoTime(recent.updated_at);
  if (Number.isNaN(at) || Math.abs(now - at) >= settleMs) return;
  st.lastActiveAt = Math.min(now, at);
  const ago = formatDuration(Math.max(0, now - at) / 1000);
  if (isTerminalGcStatus(recent.status)) {
    st.observed = recent.status;
    log(`GC ${recent.uuid} ended ${ago} ago (${recent.status}); waiting out the rest of settleSeconds (${settings.settleSeconds}s).`);
  } else {
    log(`GC ${recent.uuid} was '${recent.status}' ${ago} ago; waiting out the rest of settleSeconds (${settings.settleSeconds}s).`);
  }
}

/** Logs how much longer an active GC should take, from the median of past GC durations. */
function estimateRemaining(history: GarbageCollection[], gc: GarbageCollection, settings: GuardSettings, log: (line: string) => void): void {
  const past = history
    .filter((g) => g.uuid !== gc.uuid && isTerminalGcStatus(g.status))
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

// The GC guard: waits until no GC is active on the registry, the named stages completed, and the
// settle time after the last GC passed. Used by DoRegistryGcWait@1 and by Cosign@1 before it writes.
import { CancelledError, UserError } from '../../platform/errors';
import { linkedDeadline, sleep } from '../../platform/retry';
import { formatDuration } from '../../platform/task';
import { DigitalOceanClient } from '../../services/digitalocean';
import { pollGc } from './gc';
import { GuardResult, clearResult, timedOutResult } from './result';
import { GuardSettings } from './settings';
import { checkStages, pollStages, stagesPending } from './stages';
import { GuardDeps, GuardState, during, settleEndOf } from './state';

export { GUARD_SETTINGS, GC_WAIT_SETTINGS, GuardSettings, guardSettingsFrom } from './settings';
export { GuardResult } from './result';
export { GuardDeps } from './state';

/**
 * Waits until no GC is active (unknown statuses count as active), the named
 * stages completed (any result), and settleSeconds passed since GC was last
 * seen active (a GC that ended shortly before the guard started counts, by
 * its own updated_at). Logs progress on every change. The DigitalOcean API is
 * polled at most once per pollIntervalSeconds (slower when the token's rate
 * limit runs low). On timeout returns timedOut=true (the caller decides
 * fail/warn); the timeout also ends requests in flight. GC wait counts from
 * the first answer about the GC: retries before it are not GC wait. Callers
 * call it only with something to guard (a DigitalOcean client, stages, or both).
 */
export async function waitForGuard(deps: GuardDeps, settings: GuardSettings, signal: AbortSignal): Promise<GuardResult> {
  const { client, timeline } = deps;
  if (settings.stages.length > 0 && !timeline) {
    throw new UserError(`Input 'waitForStages' is set (${settings.stages.join(', ')}), but this is not a pipeline run whose build timeline can be read.`);
  }
  const started = Date.now();
  const st: GuardState = {
    started,
    deadline: started + settings.timeoutSeconds * 1000,
    registry: '',
    history: [],
    stageStates: [],
    gcActiveNow: client !== undefined, // until the first poll says otherwise
    lastGcPollAt: 0,
    inactiveSince: client ? undefined : started,
    gcWasActive: false,
    observed: 'none',
    inFlight: '',
    polls: 0,
  };
  // One deadline over everything, requests in flight included: a server that trickles or never
  // answers ends in the timed-out result (onTimeout decides), not in a wait past the timeout.
  const timeout = linkedDeadline(signal, settings.timeoutSeconds * 1000);
  try {
    return await guardLoop(deps, settings, st, timeout.signal);
  } catch (err) {
    if (err instanceof CancelledError && timeout.expired() && !signal.aborted) return timedOutResult(deps, settings, st, Date.now());
    throw err;
  } finally {
    timeout.clear();
  }
}

/** When each watcher looks next, and the poll delay last announced when pacing slowed polls down. */
interface Schedule {
  nextGcPoll: number;
  nextStagePoll: number;
  pacedAt: number;
}

async function guardLoop(deps: GuardDeps, settings: GuardSettings, st: GuardState, signal: AbortSignal): Promise<GuardResult> {
  const { client, timeline } = deps;
  const pollMs = settings.pollIntervalSeconds * 1000;
  if (timeline && settings.stages.length > 0) await checkStages(deps, settings, st, signal);
  // One request confirms the registry and brings the recent GCs (for the estimate and the tail window).
  if (client) {
    const opened = await during(st, 'the DigitalOcean API (registry and recent GCs)', () => client.openRegistry(settings.registry, 11, signal));
    st.registry = opened.registry;
    st.history = opened.history;
  }
  const when: Schedule = { nextGcPoll: Date.now(), nextStagePoll: Date.now() + pollMs, pacedAt: 0 };
  for (;;) {
    // 1. The DigitalOcean API, at most once per poll interval (slower when pacing asks).
    if (client && Date.now() >= when.nextGcPoll) {
      await pollGc(client, settings, st, signal, deps.log.info);
      when.nextGcPoll = Date.now() + pacedDelay(client, settings, when, deps.log.info);
    }
    // 2. The build timeline, while a named stage is not complete.
    if (timeline && stagesPending(st) && Date.now() >= when.nextStagePoll) {
      await pollStages(deps, st, signal);
      when.nextStagePoll = Date.now() + pollMs;
      // A stage that just ended may have started a GC: look again now.
      if (client && !stagesPending(st)) when.nextGcPoll = Date.now();
    }
    const now = Date.now();
    // 3. Clear? The GC must have been looked at since the stages completed.
    const settleEnd = settleEndOf(st, settings);
    const gcReady = !st.gcActiveNow && now >= settleEnd;
    const gcFreshEnough = !client || st.stagesDoneAt === undefined || st.lastGcPollAt >= st.stagesDoneAt;
    if (gcReady && !stagesPending(st) && gcFreshEnough) return clearResult(deps, settings, st, now);
    // 4. Timed out?
    if (now >= st.deadline) return timedOutResult(deps, settings, st, now);
    // 5. Sleep until the next thing can change.
    const wakes = [st.deadline];
    if (client) wakes.push(when.nextGcPoll);
    if (client && !st.gcActiveNow && settleEnd > now) wakes.push(settleEnd);
    if (timeline && stagesPending(st)) wakes.push(when.nextStagePoll);
    await sleep(Math.max(0, Math.min(...wakes) - Date.now()), signal);
  }
}

/** The delay before the next GC poll; says once when pacing slows polls down, and when it stops. */
function pacedDelay(client: DigitalOceanClient, settings: GuardSettings, when: Schedule, log: (line: string) => void): number {
  const delay = client.pollDelayMs(settings.pollIntervalSeconds * 1000);
  if (client.pacing && (!when.pacedAt || delay > when.pacedAt * 1.5 || delay < when.pacedAt / 1.5)) {
    when.pacedAt = delay;
    log(`Polling every ${formatDuration(delay / 1000)} instead of ${settings.pollIntervalSeconds}s: ${client.pacing}.`);
  } else if (!client.pacing && when.pacedAt) {
    when.pacedAt = 0;
    log(`Polling every ${settings.pollIntervalSeconds}s again.`);
  }
  return delay;
}

// The one verdict the guard reports: clear to write, or timed out with what it still waited for.
import { formatDuration } from '../../platform/task';
import { describeGcStatus } from '../../services/digitalocean';
import { GuardSettings } from './settings';
import { GuardDeps, GuardState, settleEndOf } from './state';

export interface GuardResult {
  gcWaitSeconds: number;
  gcWasActive: boolean;
  gcObservedStatus: string;
  stageWaitSeconds: number;
  timedOut: boolean;
  message: string;
}

function stageWait(st: GuardState, now: number): number {
  if (st.stagesDoneAt !== undefined) return Math.max(0, Math.round((st.stagesDoneAt - st.started) / 1000));
  return st.stageStates.length ? Math.max(0, Math.round((now - st.started) / 1000)) : 0;
}

/**
 * How long the GC kept this task from writing: from the first answer about the GC (retries before
 * it are not GC wait) to when it was clear (no GC active and the settle time passed), or to `now`
 * while it is not.
 */
function gcWaitSeconds(deps: GuardDeps, settings: GuardSettings, st: GuardState, now: number): number {
  if (!deps.client || st.firstAnswerAt === undefined) return 0;
  const base = st.firstAnswerAt;
  const settleEnd = settleEndOf(st, settings);
  const clearSince = !st.gcActiveNow && now >= settleEnd ? Math.max(st.inactiveSince ?? base, settleEnd) : now;
  return Math.max(0, Math.round((clearSince - base) / 1000));
}

export function clearResult(deps: GuardDeps, settings: GuardSettings, st: GuardState, now: number): GuardResult {
  const { client } = deps;
  const gcWait = gcWaitSeconds(deps, settings, st, now);
  const stageWaitSeconds = stageWait(st, now);
  const parts: string[] = [];
  if (client) {
    parts.push(
      st.gcWasActive
        ? `GC ended (${st.observed}) and settled after ${formatDuration(gcWait)}`
        : `no GC active on ${st.registry}${gcWait ? ` (settled for ${formatDuration(gcWait)})` : ''}`,
    );
  }
  if (st.stageStates.length) {
    parts.push(
      `stage${st.stageStates.length > 1 ? 's' : ''} ${st.stageStates.map((s) => s.identifier).join(', ')} completed${stageWaitSeconds ? ` after ${formatDuration(stageWaitSeconds)}` : ''}`,
    );
  }
  return {
    gcWaitSeconds: gcWait,
    gcWasActive: st.gcWasActive,
    gcObservedStatus: st.observed,
    stageWaitSeconds,
    timedOut: false,
    message: `Clear to write: ${parts.join('; ')}.`,
  };
}

/** The timed-out result, from the loop's own check or from the deadline ending a request in flight. */
export function timedOutResult(deps: GuardDeps, settings: GuardSettings, st: GuardState, now: number): GuardResult {
  const { client } = deps;
  const gcReady = st.firstAnswerAt !== undefined && !st.gcActiveNow && now >= settleEndOf(st, settings);
  const pending: string[] = [];
  if (st.inFlight) pending.push(`${st.inFlight} gave no usable answer in time`);
  if (st.gcActiveNow && st.current) pending.push(`GC ${st.current.uuid} on ${st.registry} is still ${describeGcStatus(st.current.status)}`);
  else if (client && st.firstAnswerAt !== undefined && !gcReady) pending.push('the settle time after GC has not passed');
  for (const s of st.stageStates.filter((x) => x.state !== 'completed')) pending.push(`stage ${s.identifier} is still ${s.state}`);
  const waited = Math.round((now - st.started) / 1000);
  return {
    gcWaitSeconds: gcWaitSeconds(deps, settings, st, now),
    gcWasActive: st.gcWasActive,
    gcObservedStatus: st.observed,
    stageWaitSeconds: stageWait(st, now),
    timedOut: true,
    message: `Timed out after ${formatDuration(waited)} (timeout ${formatDuration(settings.timeoutSeconds)}): ${pending.join('; ') || 'not clear yet'}.`,
  };
}

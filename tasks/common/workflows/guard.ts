import { CancelledError, UserError } from '../platform/errors';
import { SettingValues, SettingsTable, connection, int, list, pick, text } from '../platform/settings';
import { linkedDeadline, sleep } from '../platform/retry';
import { Logger } from '../platform/output';
import { formatDuration } from '../platform/task';
import {
  DigitalOceanClient,
  GarbageCollection,
  gcOwnDurationSeconds,
  isTerminalGcStatus,
  median,
  parseDoTime,
  validateRegistryName,
} from '../services/digitalocean';
import { StageState, TimelineClient } from '../services/timeline';

export interface GuardSettings {
  registry: string;
  stages: string[];
  timeoutSeconds: number;
  pollIntervalSeconds: number;
  settleSeconds: number;
  onTimeout: 'fail' | 'warn';
}

/** The guard's inputs, shared by DoRegistryGcWait@1 and Cosign@1 (each adds its own timeout inputs). */
export const GUARD_SETTINGS = {
  registry: text(),
  waitForStages: list(),
  pollIntervalSeconds: int(10, 1, 3600),
  settleSeconds: int(30, 0, 3600),
} as const satisfies SettingsTable;

/** The inputs of DoRegistryGcWait@1, as its task.json declares them. */
export const GC_WAIT_SETTINGS = {
  digitalOceanConnection: connection('digitalocean'),
  ...GUARD_SETTINGS,
  timeoutMinutes: int(30, 1, 1440),
  onTimeout: pick(['fail', 'warn'], 'fail'),
  timeoutSeconds: int(0, 0, 86_400),
} as const satisfies SettingsTable;

/**
 * The guard's settings from its inputs: the registry name checked against DigitalOcean's grammar
 * (when given), the timeout in seconds (a seconds override above 0 replaces the minutes), and what
 * a timeout means (Cosign@1 has no onTimeout input: a timeout fails it).
 */
export function guardSettingsFrom(
  values: SettingValues<typeof GUARD_SETTINGS>,
  timeout: { minutes: number; seconds: number },
  onTimeout: 'fail' | 'warn',
): GuardSettings {
  return {
    registry: validateRegistryName('registry', values.registry),
    stages: values.waitForStages,
    timeoutSeconds: timeout.seconds > 0 ? timeout.seconds : timeout.minutes * 60,
    pollIntervalSeconds: values.pollIntervalSeconds,
    settleSeconds: values.settleSeconds,
    onTimeout,
  };
}

export interface GuardResult {
  gcWaitSeconds: number;
  gcWasActive: boolean;
  gcObservedStatus: string;
  stageWaitSeconds: number;
  timedOut: boolean;
  message: string;
}

export interface GuardDeps {
  client?: DigitalOceanClient;
  timeline?: TimelineClient;
  log: Logger;
  /** The stage this job runs in (System.StageName), for the dependsOn advice. */
  currentStage?: string;
}

function findStage(all: StageState[], wanted: string): StageState | undefined {
  const w = wanted.toLowerCase();
  return all.find((s) => s.identifier.toLowerCase() === w) ?? all.find((s) => s.name.toLowerCase() === w);
}

function stateText(s: StageState): string {
  return s.state === 'completed' ? `completed (${s.result ?? 'no result'})` : s.state;
}

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

interface GuardState {
  started: number;
  deadline: number;
  registry: string;
  history: GarbageCollection[];
  stageStates: StageState[];
  stagesDoneAt?: number;
  /** When the first answer about the GC arrived: GC wait counts from here (not retries before it). */
  firstAnswerAt?: number;
  gcActiveNow: boolean;
  lastGcPollAt: number;
  lastActiveAt?: number;
  inactiveSince?: number;
  gcWasActive: boolean;
  observed: string;
  current?: GarbageCollection;
  finalRead?: boolean;
  estimated?: boolean;
  /** The request being waited for ('' between requests), for the timed-out message. */
  inFlight: string;
  polls: number;
}

/** Runs one request, noting what is in flight (for the message when the deadline ends it). */
async function during<T>(st: GuardState, what: string, fn: () => Promise<T>): Promise<T> {
  st.inFlight = what;
  const v = await fn();
  st.inFlight = '';
  return v;
}

async function guardLoop(deps: GuardDeps, settings: GuardSettings, st: GuardState, signal: AbortSignal): Promise<GuardResult> {
  const log = deps.log.info;
  const { client, timeline } = deps;
  const pollMs = settings.pollIntervalSeconds * 1000;
  if (timeline && settings.stages.length > 0) await checkStages(deps, settings, st, signal);
  // One request confirms the registry and brings the recent GCs (for the estimate and the tail window).
  if (client) {
    const opened = await during(st, 'the DigitalOcean API (registry and recent GCs)', () => client.openRegistry(settings.registry, 11, signal));
    st.registry = opened.registry;
    st.history = opened.history;
  }
  let nextGcPoll = Date.now();
  let nextStagePoll = Date.now() + pollMs;
  let pacedAt = 0;
  const stagesPending = () => st.stageStates.some((s) => s.state !== 'completed');
  for (;;) {
    let now = Date.now();
    // 1. The DigitalOcean API, at most once per poll interval.
    if (client && now >= nextGcPoll) {
      await pollGc(client, settings, st, signal, log);
      now = Date.now();
      const delay = client.pollDelayMs(pollMs);
      nextGcPoll = now + delay;
      if (client.pacing && (!pacedAt || delay > pacedAt * 1.5 || delay < pacedAt / 1.5)) {
        pacedAt = delay;
        log(`Polling every ${formatDuration(delay / 1000)} instead of ${settings.pollIntervalSeconds}s: ${client.pacing}.`);
      } else if (!client.pacing && pacedAt) {
        pacedAt = 0;
        log(`Polling every ${settings.pollIntervalSeconds}s again.`);
      }
    }
    // 2. The build timeline, while a named stage is not complete.
    if (timeline && stagesPending() && now >= nextStagePoll) {
      const all = await during(st, 'the build timeline', () => timeline.listStages(signal));
      now = Date.now();
      nextStagePoll = now + pollMs;
      st.stageStates = st.stageStates.map((old) => {
        const fresh = findStage(all, old.identifier) ?? old;
        if (fresh.state !== old.state || fresh.result !== old.result) log(`Stage ${fresh.identifier}: ${stateText(fresh)}.`);
        return fresh;
      });
      if (!stagesPending()) {
        st.stagesDoneAt = now;
        // A stage that just ended may have started a GC: look again now.
        if (client) nextGcPoll = now;
      }
    }
    // 3. Clear?
    const settleEnd = st.lastActiveAt === undefined ? 0 : st.lastActiveAt + settings.settleSeconds * 1000;
    const gcReady = !st.gcActiveNow && now >= settleEnd;
    const gcFreshEnough = !client || st.stagesDoneAt === undefined || st.lastGcPollAt >= st.stagesDoneAt;
    if (gcReady && !stagesPending() && gcFreshEnough) return clearResult(deps, st, settleEnd);
    // 4. Timed out?
    if (now >= st.deadline) return timedOutResult(deps, settings, st, now);
    // 5. Sleep until the next thing can change.
    const wakes = [st.deadline];
    if (client) wakes.push(nextGcPoll);
    if (client && !st.gcActiveNow && settleEnd > now) wakes.push(settleEnd);
    if (timeline && stagesPending()) wakes.push(nextStagePoll);
    await sleep(Math.max(0, Math.min(...wakes) - Date.now()), signal);
  }
}

/** Validates the stage names, refuses this job's own stage, and warns about stages running in parallel. */
async function checkStages(deps: GuardDeps, settings: GuardSettings, st: GuardState, signal: AbortSignal): Promise<void> {
  const log = deps.log.info;
  const warn = deps.log.warn;
  const stagesWanted = settings.stages;
  const all = await during(st, 'the build timeline', () => deps.timeline!.listStages(signal));
  const unknown = stagesWanted.filter((s) => !findStage(all, s));
  if (unknown.length > 0) {
    const existing = all.map((s) => (s.identifier === s.name ? s.identifier : `${s.identifier} ("${s.name}")`));
    throw new UserError(
      `Input 'waitForStages': ${unknown.map((u) => `'${u}'`).join(', ')} ${unknown.length > 1 ? 'are not stages' : 'is not a stage'} of this run; its stages are: ${existing.join(', ') || '(none)'}.`,
    );
  }
  const own = (deps.currentStage ?? '').toLowerCase();
  const self = stagesWanted.find((s) => own !== '' && (findStage(all, s)?.identifier.toLowerCase() === own || s.toLowerCase() === own));
  if (self) {
    throw new UserError(`Input 'waitForStages' names '${self}', the stage this job runs in; it cannot complete before this job does.`);
  }
  st.stageStates = stagesWanted.map((s) => findStage(all, s)!);
  const parallel = st.stageStates.filter((s) => s.state !== 'completed');
  if (parallel.length > 0) {
    const ids = parallel.map((s) => s.identifier);
    const here = deps.currentStage ? `stage '${deps.currentStage}'` : "this job's stage";
    warn(
      `Stage${ids.length > 1 ? 's' : ''} ${ids.map((i) => `'${i}'`).join(', ')} ${ids.length > 1 ? 'have' : 'has'} not completed and ${ids.length > 1 ? 'run' : 'runs'} in parallel with this job; this task waits, but ordering them is safer: add \`dependsOn: [${ids.join(', ')}]\` (plus the existing dependencies) to ${here}.`,
    );
    log('To order the stages, in the pipeline YAML:');
    log(`  - stage: ${deps.currentStage || '<this stage>'}`);
    log('    dependsOn:');
    log('    - <the stages it already depends on>');
    for (const id of ids) log(`    - ${id}`);
    // Not succeeded(): that would skip this stage whenever maintenance fails, and a failed GC must not block releases.
    const anyResult = ids.map((i) => `in(dependencies.${i}.result, 'Succeeded', 'SucceededWithIssues', 'Failed', 'Skipped')`);
    log(`    condition: and(succeeded('<each stage that must pass>'), ${anyResult.join(', ')})`);
  }
  for (const s of st.stageStates) log(`Stage ${s.identifier}: ${stateText(s)}.`);
  if (parallel.length === 0) st.stagesDoneAt = Date.now();
}

/** One look at the active GC, and what it changes in the state. */
async function pollGc(client: DigitalOceanClient, settings: GuardSettings, st: GuardState, signal: AbortSignal, log: (line: string) => void): Promise<void> {
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

function stageWait(st: GuardState, now: number): number {
  if (st.stagesDoneAt !== undefined) return Math.max(0, Math.round((st.stagesDoneAt - st.started) / 1000));
  return st.stageStates.length ? Math.max(0, Math.round((now - st.started) / 1000)) : 0;
}

function clearResult(deps: GuardDeps, st: GuardState, settleEnd: number): GuardResult {
  const { client } = deps;
  const base = st.firstAnswerAt ?? st.started;
  const readySince = Math.max(st.inactiveSince ?? base, settleEnd);
  const gcWaitSeconds = client ? Math.max(0, Math.round((readySince - base) / 1000)) : 0;
  const stageWaitSeconds = stageWait(st, Date.now());
  const parts: string[] = [];
  if (client) {
    parts.push(
      st.gcWasActive
        ? `GC ended (${st.observed}) and settled after ${formatDuration(gcWaitSeconds)}`
        : `no GC active on ${st.registry}${gcWaitSeconds ? ` (settled for ${formatDuration(gcWaitSeconds)})` : ''}`,
    );
  }
  if (st.stageStates.length) {
    parts.push(
      `stage${st.stageStates.length > 1 ? 's' : ''} ${st.stageStates.map((s) => s.identifier).join(', ')} completed${stageWaitSeconds ? ` after ${formatDuration(stageWaitSeconds)}` : ''}`,
    );
  }
  return {
    gcWaitSeconds,
    gcWasActive: st.gcWasActive,
    gcObservedStatus: st.observed,
    stageWaitSeconds,
    timedOut: false,
    message: `Clear to write: ${parts.join('; ')}.`,
  };
}

/** The timed-out result, from the loop's own check or from the deadline ending a request in flight. */
function timedOutResult(deps: GuardDeps, settings: GuardSettings, st: GuardState, now: number): GuardResult {
  const { client } = deps;
  const settleEnd = st.lastActiveAt === undefined ? 0 : st.lastActiveAt + settings.settleSeconds * 1000;
  const gcReady = st.firstAnswerAt !== undefined && !st.gcActiveNow && now >= settleEnd;
  const pending: string[] = [];
  if (st.inFlight) pending.push(`${st.inFlight} gave no usable answer in time`);
  if (st.gcActiveNow && st.current) pending.push(`GC ${st.current.uuid} on ${st.registry} is still '${st.current.status}'`);
  else if (client && st.firstAnswerAt !== undefined && !gcReady) pending.push('the settle time after GC has not passed');
  for (const s of st.stageStates.filter((x) => x.state !== 'completed')) pending.push(`stage ${s.identifier} is still ${s.state}`);
  const waited = Math.round((now - st.started) / 1000);
  const base = st.firstAnswerAt ?? now;
  const gcWait = gcReady ? Math.max(st.inactiveSince ?? base, settleEnd) - base : now - base;
  return {
    gcWaitSeconds: client ? Math.max(0, Math.round(gcWait / 1000)) : 0,
    gcWasActive: st.gcWasActive,
    gcObservedStatus: st.observed,
    stageWaitSeconds: stageWait(st, now),
    timedOut: true,
    message: `Timed out after ${formatDuration(waited)} (timeout ${formatDuration(settings.timeoutSeconds)}): ${pending.join('; ') || 'not clear yet'}.`,
  };
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

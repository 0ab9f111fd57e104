import { UserError } from './errors';
import { readInt, readList, readPick, readString } from './inputs';
import { sleep } from './retry';
import { formatDuration } from './vso';
import {
  DigitalOceanClient,
  GarbageCollection,
  gcOwnDurationSeconds,
  isTerminalGcStatus,
  median,
  parseDoTime,
  validateRegistryName,
} from './digitalocean';
import { StageState, TimelineClient } from './timeline';

export interface GuardSettings {
  registry: string;
  stages: string[];
  timeoutSeconds: number;
  pollIntervalSeconds: number;
  settleSeconds: number;
  onTimeout: 'fail' | 'warn';
}

/**
 * Reads registry (validated against REGISTRY_NAME_PATTERN when non-empty),
 * waitForStages, the timeout input (name given: 'timeoutMinutes' for
 * DoRegistryGcWait, 'guardTimeoutMinutes' for Cosign@1) and its optional
 * seconds override (the same name with Seconds: 'timeoutSeconds',
 * 'guardTimeoutSeconds'; 0 or absent = use the minutes), pollIntervalSeconds,
 * settleSeconds (0 allowed: no settle wait), onTimeout (absent → 'fail').
 */
export function readGuardSettings(timeoutInputName: string, defaultTimeoutMinutes: number): GuardSettings {
  const registry = validateRegistryName('registry', readString('registry'));
  const stages = readList('waitForStages');
  const minutes = readInt(timeoutInputName, defaultTimeoutMinutes, 1, 1440);
  const overrideName = timeoutInputName.replace(/Minutes$/, 'Seconds');
  const seconds = overrideName !== timeoutInputName ? readInt(overrideName, 0, 0, 86_400) : 0;
  const pollIntervalSeconds = readInt('pollIntervalSeconds', 10, 1, 3600);
  const settleSeconds = readInt('settleSeconds', 30, 0, 3600);
  const onTimeout = readPick('onTimeout', ['fail', 'warn'] as const, 'fail');
  return { registry, stages, timeoutSeconds: seconds > 0 ? seconds : minutes * 60, pollIntervalSeconds, settleSeconds, onTimeout };
}

export interface GuardResult {
  gcWaitSeconds: number;
  gcWasActive: boolean;
  gcObservedStatus: string;
  stageWaitSeconds: number;
  timedOut: boolean;
  message: string;
  /** The registry guarded ('' when no DigitalOcean connection). */
  registry?: string;
  /** DigitalOcean API requests this guard sent. */
  apiRequests?: number;
}

export interface GuardDeps {
  client?: DigitalOceanClient;
  timeline?: TimelineClient;
  log?: (line: string) => void;
  /** Warnings (e.g. a stage running in parallel); defaults to log. */
  warn?: (line: string) => void;
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
 * fail/warn).
 */
export async function waitForGuard(deps: GuardDeps, settings: GuardSettings, signal: AbortSignal): Promise<GuardResult> {
  const log = deps.log ?? (() => undefined);
  const warn = deps.warn ?? log;
  const { client, timeline } = deps;
  const stagesWanted = settings.stages;
  if (stagesWanted.length > 0 && !timeline) {
    throw new UserError(`Input 'waitForStages' is set (${stagesWanted.join(', ')}), but this is not a pipeline run whose build timeline can be read.`);
  }
  if (!client && stagesWanted.length === 0) {
    return {
      gcWaitSeconds: 0,
      gcWasActive: false,
      gcObservedStatus: 'none',
      stageWaitSeconds: 0,
      timedOut: false,
      registry: '',
      apiRequests: 0,
      message: 'Nothing to guard: no DigitalOcean connection (or DIGITALOCEAN_ACCESS_TOKEN) and no waitForStages.',
    };
  }
  const started = Date.now();
  const deadline = started + settings.timeoutSeconds * 1000;
  const pollMs = settings.pollIntervalSeconds * 1000;
  const settleMs = settings.settleSeconds * 1000;
  const requestsBefore = client?.requestCount ?? 0;

  // Stages: validate names and warn about parallel stages before waiting.
  let stageStates: StageState[] = [];
  let stagesDoneAt: number | undefined;
  if (timeline && stagesWanted.length > 0) {
    const all = await timeline.listStages(signal);
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
    stageStates = stagesWanted.map((s) => findStage(all, s)!);
    const parallel = stageStates.filter((s) => s.state !== 'completed');
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
    for (const s of stageStates) log(`Stage ${s.identifier}: ${stateText(s)}.`);
    if (parallel.length === 0) stagesDoneAt = Date.now();
  }

  // One request confirms the registry and brings the recent GCs (for the estimate and the tail window).
  const opened = client ? await client.openRegistry(settings.registry, 11, signal) : { registry: '', history: [] as GarbageCollection[] };
  const registry = opened.registry;
  const history = opened.history;


  let nextGcPoll = Date.now();
  let nextStagePoll = Date.now() + pollMs;
  let gcActiveNow = client !== undefined; // until the first poll says otherwise
  let lastGcPollAt = 0;
  let lastActiveAt: number | undefined;
  let inactiveSince: number | undefined = client ? undefined : started;
  let gcWasActive = false;
  let observed = 'none';
  let current: GarbageCollection | undefined;
  let estimated = false;
  let pacedAt = 0;
  let finalRead = false;
  let polls = 0;

  const stagesPending = () => stageStates.some((s) => s.state !== 'completed');

  for (;;) {
    let now = Date.now();
    // 1. The DigitalOcean API, at most once per poll interval.
    if (client && now >= nextGcPoll) {
      const gc = await client.getActiveGc(registry, signal);
      polls++;
      now = Date.now();
      lastGcPollAt = now;
      const delay = client.pollDelayMs(pollMs);
      nextGcPoll = now + delay;
      if (client.pacing && (!pacedAt || delay > pacedAt * 1.5 || delay < pacedAt / 1.5)) {
        pacedAt = delay;
        log(`Polling every ${formatDuration(delay / 1000)} instead of ${settings.pollIntervalSeconds}s: ${client.pacing}.`);
      } else if (!client.pacing && pacedAt) {
        pacedAt = 0;
        log(`Polling every ${settings.pollIntervalSeconds}s again.`);
      }
      const active = gc !== undefined && !isTerminalGcStatus(gc.status);
      if (active) {
        const firstSight = !current || current.uuid !== gc.uuid;
        if (firstSight || current!.status !== gc.status) {
          const since = parseDoTime(gc.created_at);
          log(`GC ${gc.uuid} on ${registry} is '${gc.status}'${Number.isNaN(since) ? '' : ` (started ${formatDuration((now - since) / 1000)} ago)`}; waiting.`);
        }
        gcActiveNow = true;
        gcWasActive = true;
        lastActiveAt = now;
        inactiveSince = undefined;
        observed = gc.status;
        current = gc;
        finalRead = false;
        if (firstSight && !estimated) {
          estimated = true;
          estimateRemaining(history, gc, settings, log);
        }
      } else {
        if (current && !finalRead) {
          // The GC we watched has ended: its final status comes from the list.
          finalRead = true;
          const final = (await client.listGcs(registry, 5, signal)).find((g) => g.uuid === current!.uuid);
          observed = final?.status ?? (gc && gc.uuid === current.uuid ? gc.status : 'ended');
          const dur = final ? gcOwnDurationSeconds(final) : undefined;
          // Settle from the GC's own end (its final updated_at), not from our last look at it.
          const endedAt = final && isTerminalGcStatus(final.status) ? parseDoTime(final.updated_at) : NaN;
          if (!Number.isNaN(endedAt) && lastActiveAt !== undefined) lastActiveAt = Math.min(now, Math.max(lastActiveAt, endedAt));
          log(`GC ${current.uuid} ended: ${observed}${dur !== undefined ? ` after ${formatDuration(dur)}` : ''}.`);
        } else if (!current && polls === 1) {
          log(`No GC is active on ${registry}.`);
          if (settleMs > 0) {
            // A GC that ended moments before the guard started still has its tail window.
            const recent = history[0];
            const ended = recent && isTerminalGcStatus(recent.status) ? parseDoTime(recent.updated_at) : NaN;
            if (recent && !isTerminalGcStatus(recent.status)) {
              // Active in the list a moment ago, gone now: it just ended.
              lastActiveAt = now;
              log(`GC ${recent.uuid} was '${recent.status}' a moment ago; settling for settleSeconds (${settings.settleSeconds}s).`);
            } else if (!Number.isNaN(ended) && now - ended < settleMs && ended - now < settleMs) {
              lastActiveAt = Math.min(now, ended);
              observed = recent!.status;
              log(`GC ${recent!.uuid} ended ${formatDuration(Math.max(0, now - ended) / 1000)} ago (${recent!.status}); waiting out the rest of settleSeconds (${settings.settleSeconds}s).`);
            }
          }
        }
        if (inactiveSince === undefined) inactiveSince = now;
        gcActiveNow = false;
      }
    }

    // 2. The build timeline, while a named stage is not complete.
    if (timeline && stagesPending() && now >= nextStagePoll) {
      const all = await timeline.listStages(signal);
      now = Date.now();
      nextStagePoll = now + pollMs;
      stageStates = stageStates.map((old) => {
        const fresh = findStage(all, old.identifier) ?? old;
        if (fresh.state !== old.state || fresh.result !== old.result) log(`Stage ${fresh.identifier}: ${stateText(fresh)}.`);
        return fresh;
      });
      if (!stagesPending()) {
        stagesDoneAt = now;
        // A stage that just ended may have started a GC: look again now.
        if (client) nextGcPoll = now;
      }
    }

    // 3. Clear?
    const settleEnd = lastActiveAt === undefined ? 0 : lastActiveAt + settleMs;
    const gcReady = !gcActiveNow && now >= settleEnd;
    const gcFreshEnough = !client || stagesDoneAt === undefined || lastGcPollAt >= stagesDoneAt;
    if (gcReady && !stagesPending() && gcFreshEnough) {
      const readySince = Math.max(inactiveSince ?? started, settleEnd);
      const gcWaitSeconds = client ? Math.max(0, Math.round((readySince - started) / 1000)) : 0;
      const stageWaitSeconds = stagesDoneAt === undefined ? 0 : Math.max(0, Math.round((stagesDoneAt - started) / 1000));
      const parts: string[] = [];
      if (client) {
        parts.push(gcWasActive ? `GC ended (${observed}) and settled after ${formatDuration(gcWaitSeconds)}` : `no GC active on ${registry}${gcWaitSeconds ? ` (settled for ${formatDuration(gcWaitSeconds)})` : ''}`);
      }
      if (stageStates.length) {
        parts.push(`stage${stageStates.length > 1 ? 's' : ''} ${stageStates.map((s) => s.identifier).join(', ')} completed${stageWaitSeconds ? ` after ${formatDuration(stageWaitSeconds)}` : ''}`);
      }
      return {
        gcWaitSeconds,
        gcWasActive,
        gcObservedStatus: observed,
        stageWaitSeconds,
        timedOut: false,
        registry,
        apiRequests: (client?.requestCount ?? 0) - requestsBefore,
        message: `Clear to write: ${parts.join('; ')}.`,
      };
    }

    // 4. Timed out?
    if (now >= deadline) {
      const pending: string[] = [];
      if (gcActiveNow && current) pending.push(`GC ${current.uuid} on ${registry} is still '${current.status}'`);
      else if (client && !gcReady) pending.push('the settle time after GC has not passed');
      for (const s of stageStates.filter((x) => x.state !== 'completed')) pending.push(`stage ${s.identifier} is still ${s.state}`);
      const waited = Math.round((now - started) / 1000);
      return {
        gcWaitSeconds: client ? (gcReady ? Math.round((Math.max(inactiveSince ?? started, settleEnd) - started) / 1000) : waited) : 0,
        gcWasActive,
        gcObservedStatus: observed,
        stageWaitSeconds: stagesDoneAt === undefined ? (stageStates.length ? waited : 0) : Math.round((stagesDoneAt - started) / 1000),
        timedOut: true,
        registry,
        apiRequests: (client?.requestCount ?? 0) - requestsBefore,
        message: `Timed out after ${formatDuration(waited)} (timeout ${formatDuration(settings.timeoutSeconds)}): ${pending.join('; ') || 'not clear yet'}.`,
      };
    }

    // 5. Sleep until the next thing can change.
    const wakes = [deadline];
    if (client) wakes.push(nextGcPoll);
    if (client && !gcActiveNow && settleEnd > now) wakes.push(settleEnd);
    if (timeline && stagesPending()) wakes.push(nextStagePoll);
    await sleep(Math.max(0, Math.min(...wakes) - Date.now()), signal);
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

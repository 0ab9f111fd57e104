import { readBool, readInt, readPick, readString } from './inputs';
import { OutputSpec, mdCell } from './output';
import { CancelledError, errorMessage } from './errors';
import { linkedDeadline, sleep } from './retry';
import { formatDuration } from './vso';
import {
  DigitalOceanClient,
  GC_TYPES,
  GarbageCollection,
  GcAlreadyActiveError,
  GcTypeInput,
  gcOwnDurationSeconds,
  gcTypeInputName,
  isTerminalGcStatus,
  median,
  parseDoTime,
  validateRegistryName,
} from './digitalocean';

/** DoRegistryGarbageCollection@1: what to do when a GC is already running. */
export const IF_ALREADY_RUNNING = ['wait', 'adopt', 'skip', 'fail'] as const;
export type IfAlreadyRunning = (typeof IF_ALREADY_RUNNING)[number];

export interface GcRunSettings {
  registry: string;
  gcType: GcTypeInput;
  ifAlreadyRunning: IfAlreadyRunning;
  waitForCompletion: boolean;
  timeoutSeconds: number;
  pollIntervalSeconds: number;
  warnAfterSeconds: number;
  cancelOnTimeout: boolean;
  failOnGcFailure: boolean;
}

/** Every input of DoRegistryGarbageCollection@1 but the connection, validated (no network). */
export function readGcRunSettings(): GcRunSettings {
  const registry = validateRegistryName('registry', readString('registry'));
  const gcType = readPick('gcType', Object.keys(GC_TYPES) as GcTypeInput[], 'untagged-manifests-and-unreferenced-blobs');
  const ifAlreadyRunning = readPick('ifAlreadyRunning', IF_ALREADY_RUNNING, 'wait');
  const waitForCompletion = readBool('waitForCompletion', true);
  const timeoutMinutes = readInt('timeoutMinutes', 60, 1, 1440);
  const timeoutSecondsOverride = readInt('timeoutSeconds', 0, 0, 86_400);
  const pollIntervalSeconds = readInt('pollIntervalSeconds', 10, 1, 3600);
  const warnAfterMinutes = readInt('warnAfterMinutes', 15, 1, 1440);
  const cancelOnTimeout = readBool('cancelOnTimeout', false);
  const failOnGcFailure = readBool('failOnGcFailure', true);
  return {
    registry,
    gcType,
    ifAlreadyRunning,
    waitForCompletion,
    timeoutSeconds: timeoutSecondsOverride > 0 ? timeoutSecondsOverride : timeoutMinutes * 60,
    pollIntervalSeconds,
    warnAfterSeconds: warnAfterMinutes * 60,
    cancelOnTimeout,
    failOnGcFailure,
  };
}

export type GcAction = 'started' | 'adopted' | 'skipped' | 'none';

/** After a timeout, the cancel (cancelOnTimeout) gets this long on the job's own signal. */
const CANCEL_WINDOW_MS = 30_000;
/** After a timeout, reading past GCs for the summary gets this long. */
const SUMMARY_WINDOW_MS = 3_000;

/** The grammar of each output of DoRegistryGarbageCollection@1 ('' where there is nothing to report). */
export const GC_RUN_OUTPUTS: Record<string, OutputSpec> = {
  gcUuid: { grammar: 'uuid', optional: true },
  gcStatus: { grammar: 'statusWord', optional: true },
  gcType: { grammar: 'pickName', optional: true },
  gcDurationSeconds: { grammar: 'wholeNumber', optional: true },
  gcBlobsDeleted: { grammar: 'wholeNumber', optional: true },
  gcFreedBytes: { grammar: 'wholeNumber', optional: true },
  gcStartedAt: { grammar: 'timestamp', optional: true },
  gcFinishedAt: { grammar: 'timestamp', optional: true },
  gcAction: { grammar: 'pickName' },
};

export interface GcRunResult {
  registry: string;
  action: GcAction;
  gc?: GarbageCollection;
  status: string;
  durationSeconds?: number;
  durationSource: "GC's own timestamps" | 'wall clock' | '';
  timedOut: boolean;
  /** Succeeded, SucceededWithIssues or Failed: the caller sets the task result. */
  outcome: 'succeeded' | 'withIssues' | 'failed';
  message: string;
  summary: string;
  outputs: Record<string, string>;
}

export interface GcRunUi {
  log: (line: string) => void;
  warn: (line: string) => void;
  progress: (percent: number, text: string) => void;
}

interface TimelineEntry {
  at: number;
  text: string;
}

const STATUS_PROGRESS: Record<string, number> = {
  requested: 5,
  'waiting for write jwts to expire': 20,
  'scanning manifests': 50,
  'deleting unreferenced blobs': 75,
  cancelling: 90,
};

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Starts (or adopts) a GC, waits for it and times it. Never throws for GC
 * outcomes: the result says succeeded / withIssues / failed, with outputs and
 * the Markdown summary, so the task can report all of them first.
 */
export async function runGarbageCollection(client: DigitalOceanClient, settings: GcRunSettings, signal: AbortSignal, ui: GcRunUi): Promise<GcRunResult> {
  const started = Date.now();
  const deadline = started + settings.timeoutSeconds * 1000;
  const pollMs = settings.pollIntervalSeconds * 1000;
  const timeline: TimelineEntry[] = [];
  const note = (text: string) => {
    timeline.push({ at: Date.now(), text });
    ui.log(text);
  };
  // One deadline over the whole run (resolve, start, wait), requests in flight included.
  const runDeadline = linkedDeadline(signal, settings.timeoutSeconds * 1000);
  const rs = runDeadline.signal;

  let registry = '';
  let ours: GarbageCollection | undefined;
  /** The newest record of our GC, or of the GC started elsewhere that we wait for. */
  let lastSeen: GarbageCollection | undefined;
  let waitingForOther = false;
  let phase = 'the DigitalOcean API (the registry)';
  let action: GcAction = 'none';
  let ourStart = Date.now();
  let startAttemptAt: number | undefined;
  let progressDone = false;
  let lastPacing = '';
  try {
    return await main();
  } catch (err) {
    if (!(err instanceof CancelledError && runDeadline.expired() && !signal.aborted)) throw err;
    // The deadline ended a request in flight: the same timed-out result as the loop's own check.
    const waited = formatDuration((Date.now() - started) / 1000);
    if (ours) return timedOut(lastSeen ?? ours);
    if (waitingForOther && lastSeen) return timedOutOther(lastSeen);
    const mayHave = startAttemptAt !== undefined ? '; the start request was in flight, so a GC may have started' : '; no GC was started';
    return finish({
      outcome: 'failed',
      action: 'none',
      timedOut: true,
      message: `Timed out after ${waited} (timeout ${formatDuration(settings.timeoutSeconds)}): ${phase} gave no usable answer in time${mayHave}.`,
    });
  } finally {
    runDeadline.clear();
  }

  async function main(): Promise<GcRunResult> {
    registry = await client.resolveRegistry(settings.registry, rs);
    const wantedType = GC_TYPES[settings.gcType];
    for (let round = 0; !ours; round++) {
      phase = 'the DigitalOcean API (the active GC)';
      const active = await client.getActiveGc(registry, rs);
      const createdAt = active ? parseDoTime(active.created_at) : NaN;
      if (active && !isTerminalGcStatus(active.status) && startAttemptAt !== undefined && createdAt >= startAttemptAt - 2000) {
        // Our start request was refused as a duplicate after an earlier attempt failed in
        // transit (5xx, reset): the GC that attempt created is ours.
        ours = active;
        action = 'started';
        note(`GC ${active.uuid} on ${registry} was created by this task's earlier start request: '${active.status}'.`);
        break;
      }
      if (active && !isTerminalGcStatus(active.status)) {
        const desc = `GC ${active.uuid} ('${active.status}'${active.type ? `, ${active.type}` : ''}) is already running on ${registry}`;
        if (settings.ifAlreadyRunning === 'fail') {
          note(`${desc}; ifAlreadyRunning is 'fail'.`);
          return finish({ outcome: 'failed', action: 'none', gc: active, message: `${desc} (ifAlreadyRunning: fail); no GC was started.` });
        }
        if (settings.ifAlreadyRunning === 'skip') {
          note(`${desc}; ifAlreadyRunning is 'skip': not starting another.`);
          return finish({ outcome: 'succeeded', action: 'skipped', gc: active, message: `${desc}; skipped (ifAlreadyRunning: skip).` });
        }
        if (settings.ifAlreadyRunning === 'adopt') {
          note(`${desc}; adopting it (ifAlreadyRunning: adopt): it is timed and reported as this task's GC.`);
          ours = active;
          action = 'adopted';
          const created = parseDoTime(active.created_at);
          ourStart = Number.isNaN(created) ? Date.now() : Math.min(Date.now(), created);
          break;
        }
        note(`${desc}; waiting for it to end before starting ours (ifAlreadyRunning: wait).`);
        waitingForOther = true;
        const other = await waitUntilEnded(active, false);
        waitingForOther = false;
        if (other.timedOut) return timedOutOther(other.gc);
        continue;
      }
      try {
        ourStart = Date.now();
        startAttemptAt = ourStart;
        phase = 'the DigitalOcean API (the start request)';
        ours = await client.startGc(registry, wantedType, rs);
        action = 'started';
        note(`Started GC ${ours.uuid} on ${registry} (${wantedType}): '${ours.status}'.`);
      } catch (err) {
        if (err instanceof GcAlreadyActiveError && round < 3) {
          note(`Starting a GC was refused because one is already active (${err.status}); looking again.`);
          continue;
        }
        throw err;
      }
    }
    const gc = ours!;
    ui.progress(STATUS_PROGRESS[gc.status.toLowerCase()] ?? 5, `GC ${gc.status}`);
    if (!settings.waitForCompletion) {
      return finish({ outcome: 'succeeded', action, gc, message: `GC ${gc.uuid} ${action} on ${registry}; not waiting for it (waitForCompletion: false).` });
    }
    const waited = await waitUntilEnded(gc, true);
    if (waited.timedOut) return timedOut(waited.gc);
    return ended(waited.gc);
  }

  function timedOutOther(gc: GarbageCollection): Promise<GcRunResult> {
    return finish({
      outcome: 'failed',
      action: 'none',
      gc,
      timedOut: true,
      message: `Timed out after ${formatDuration((Date.now() - started) / 1000)} waiting for GC ${gc.uuid} (started elsewhere, still '${gc.status}') to end; no GC was started.`,
    });
  }

  /** Our GC outlived the timeout: cancel it when asked (the job's signal, its own short deadline). */
  async function timedOut(last: GarbageCollection): Promise<GcRunResult> {
    let final = last;
    let cancelNote = 'it is still running (cancelOnTimeout: false)';
    let cancelAccepted = false;
    if (settings.cancelOnTimeout) {
      const cancelDeadline = linkedDeadline(signal, CANCEL_WINDOW_MS);
      try {
        note(`Timed out: cancelling GC ${final.uuid}.`);
        final = await client.cancelGc(registry, final.uuid, cancelDeadline.signal);
        note(`Cancel requested: '${final.status}'.`);
        cancelAccepted = ['cancelling', 'cancelled'].includes(final.status.toLowerCase());
        // Give the cancel a short while to land (bounded; the task already timed out).
        while (!isTerminalGcStatus(final.status)) {
          await sleep(client.pollDelayMs(pollMs), cancelDeadline.signal);
          const seen = await readFinal(final.uuid, cancelDeadline.signal);
          if (seen && seen.status !== final.status) note(`GC ${final.uuid}: '${seen.status}'.`);
          if (seen) final = seen;
        }
      } catch (err) {
        if (!(err instanceof CancelledError && cancelDeadline.expired() && !signal.aborted)) throw err;
        note(`The cancel of GC ${final.uuid} did not complete within ${CANCEL_WINDOW_MS / 1000}s.`);
      } finally {
        cancelDeadline.clear();
      }
      cancelNote = `cancel requested, now '${final.status}'`;
    }
    if (!cancelAccepted) {
      const ran = (Date.now() - ourStart) / 1000;
      ui.warn(`GC ${final.uuid} on ${registry} has run ${formatDuration(ran)} without finishing (timeout ${formatDuration(settings.timeoutSeconds)}).`);
    }
    return finish({
      outcome: 'failed',
      action,
      gc: final,
      timedOut: true,
      message: `GC ${final.uuid} did not finish within ${formatDuration(settings.timeoutSeconds)} (last status '${last.status}'); ${cancelNote}.`,
    });
  }

  function ended(final: GarbageCollection): Promise<GcRunResult> {
    const status = final.status.toLowerCase();
    const { seconds } = durationOf(final, ourStart);
    if (seconds > settings.warnAfterSeconds) {
      ui.warn(`GC ${final.uuid} on ${registry} took ${formatDuration(seconds)}, longer than warnAfterMinutes (${settings.warnAfterSeconds / 60}).`);
    }
    if (status === 'failed' || status === 'cancelled') {
      const msg = `GC ${final.uuid} on ${registry} ended '${status}' after ${formatDuration(seconds)}.`;
      if (!settings.failOnGcFailure) ui.warn(`${msg} (failOnGcFailure: false)`);
      return finish({ outcome: settings.failOnGcFailure ? 'failed' : 'withIssues', action, gc: final, message: msg });
    }
    return finish({
      outcome: 'succeeded',
      action,
      gc: final,
      message: `GC ${final.uuid} on ${registry} ${status} in ${formatDuration(seconds)}: ${final.blobs_deleted} blob(s) deleted, ${humanBytes(final.freed_bytes)} freed.`,
    });
  }

  // ---- helpers (closures over the run) ----

  function durationOf(gc: GarbageCollection, wallStart: number): { seconds: number; source: "GC's own timestamps" | 'wall clock' } {
    const own = isTerminalGcStatus(gc.status) ? gcOwnDurationSeconds(gc) : undefined;
    if (own !== undefined) return { seconds: own, source: "GC's own timestamps" };
    return { seconds: Math.max(0, Math.round((Date.now() - wallStart) / 1000)), source: 'wall clock' };
  }

  async function readFinal(uuid: string, within: AbortSignal): Promise<GarbageCollection | undefined> {
    const active = await client.getActiveGc(registry, within);
    if (active && active.uuid === uuid) return active;
    return (await client.listGcs(registry, 20, within)).find((g) => g.uuid === uuid);
  }

  /** Polls until the GC is terminal or no longer the active one; mine=true reports progress. */
  async function waitUntilEnded(gc: GarbageCollection, mine: boolean): Promise<{ gc: GarbageCollection; timedOut: boolean }> {
    let last = gc;
    lastSeen = gc;
    phase = "the DigitalOcean API (the GC's status)";
    let warnedLong = false;
    const since = mine ? ourStart : Date.now();
    while (!isTerminalGcStatus(last.status)) {
      const now = Date.now();
      if (now >= deadline) return { gc: last, timedOut: true };
      const delay = client.pollDelayMs(pollMs);
      if (client.pacing !== lastPacing) {
        lastPacing = client.pacing;
        ui.log(
          lastPacing
            ? `Polling every ${formatDuration(delay / 1000)} instead of ${settings.pollIntervalSeconds}s: ${lastPacing}.`
            : `Polling every ${settings.pollIntervalSeconds}s again.`,
        );
      }
      await sleep(Math.min(delay, Math.max(0, deadline - now)), rs);
      if (Date.now() >= deadline) return { gc: last, timedOut: true };
      const active = await client.getActiveGc(registry, rs);
      let seen: GarbageCollection | undefined = active && active.uuid === last.uuid ? active : undefined;
      if (!seen) {
        // Not the active one any more: it ended; the list has its final record.
        seen = (await client.listGcs(registry, 20, rs)).find((g) => g.uuid === last.uuid);
        if (!seen) {
          ui.warn(`GC ${last.uuid} is no longer the active GC but is missing from the list of GCs; its final status is unknown.`);
          return { gc: { ...last, status: 'unknown' }, timedOut: false };
        }
      }
      if (seen.status !== last.status) {
        const pct = isTerminalGcStatus(seen.status) ? 100 : STATUS_PROGRESS[seen.status.toLowerCase()];
        if (mine) {
          note(`GC ${seen.uuid}: '${seen.status}' after ${formatDuration((Date.now() - since) / 1000)}.`);
          ui.progress(pct ?? lastPct(), `GC ${seen.status}`);
          if (pct === 100) progressDone = true;
        } else {
          note(`GC ${seen.uuid} (started elsewhere): '${seen.status}'.`);
        }
      }
      if (mine && !warnedLong && Date.now() - since > settings.warnAfterSeconds * 1000 && !isTerminalGcStatus(seen.status)) {
        warnedLong = true;
        ui.log(
          `GC ${seen.uuid} is still '${seen.status}' after ${formatDuration((Date.now() - since) / 1000)} (warnAfterMinutes: ${settings.warnAfterSeconds / 60}).`,
        );
      }
      last = seen;
      lastSeen = seen;
    }
    return { gc: last, timedOut: false };
  }

  function lastPct(): number {
    for (let i = timeline.length - 1; i >= 0; i--) {
      const m = /: '([^']+)'/.exec(timeline[i].text);
      if (m && STATUS_PROGRESS[m[1].toLowerCase()] !== undefined) return STATUS_PROGRESS[m[1].toLowerCase()];
    }
    return 50;
  }

  async function finish(r: {
    outcome: GcRunResult['outcome'];
    action: GcAction;
    gc?: GarbageCollection;
    message: string;
    timedOut?: boolean;
  }): Promise<GcRunResult> {
    const gc = r.gc;
    const terminal = gc ? isTerminalGcStatus(gc.status) : false;
    const dur = gc && (r.action === 'started' || r.action === 'adopted') ? durationOf(gc, ourStart) : undefined;
    if ((terminal || r.timedOut) && !progressDone) ui.progress(100, gc ? `GC ${gc.status}` : 'done');
    let history: GarbageCollection[] = [];
    // The summary's history is worth a few seconds at most once the run's time is up.
    const within = linkedDeadline(signal, r.timedOut || rs.aborted ? SUMMARY_WINDOW_MS : Math.max(SUMMARY_WINDOW_MS, deadline - Date.now()));
    try {
      if (registry) history = (await client.listGcs(registry, 11, within.signal)).filter((g) => !gc || g.uuid !== gc.uuid);
    } catch (err) {
      if (signal.aborted) throw err;
      ui.log(`Could not read past GCs for the summary: ${errorMessage(err)}`);
    } finally {
      within.clear();
    }
    const outputs: Record<string, string> = {
      gcUuid: gc?.uuid ?? '',
      gcStatus: gc?.status ?? '',
      gcType: gcTypeInputName(gc?.type) || (r.action === 'started' ? settings.gcType : ''),
      gcDurationSeconds: dur ? String(dur.seconds) : '',
      gcBlobsDeleted: gc && terminal ? String(gc.blobs_deleted) : gc ? String(gc.blobs_deleted ?? 0) : '',
      gcFreedBytes: gc ? String(gc.freed_bytes ?? 0) : '',
      gcStartedAt: gc && !Number.isNaN(parseDoTime(gc.created_at)) ? iso(parseDoTime(gc.created_at)) : '',
      gcFinishedAt: gc && terminal && !Number.isNaN(parseDoTime(gc.updated_at)) ? iso(parseDoTime(gc.updated_at)) : '',
      gcAction: r.action,
    };
    const summary = renderSummary(registry, r, gc, dur, history, timeline, started);
    return {
      registry,
      action: r.action,
      gc,
      status: gc?.status ?? '',
      durationSeconds: dur?.seconds,
      durationSource: dur?.source ?? '',
      timedOut: r.timedOut ?? false,
      outcome: r.outcome,
      message: r.message,
      summary,
      outputs,
    };
  }
}

function renderSummary(
  registry: string,
  r: { outcome: string; action: GcAction; message: string; timedOut?: boolean },
  gc: GarbageCollection | undefined,
  dur: { seconds: number; source: string } | undefined,
  history: GarbageCollection[],
  timeline: TimelineEntry[],
  started: number,
): string {
  const lines: string[] = [];
  lines.push(`### DigitalOcean registry garbage collection: ${registry}`, '');
  lines.push(mdCell(r.message), '');
  lines.push('| | |', '|---|---|');
  lines.push(`| Registry | \`${registry}\` |`);
  if (gc) {
    lines.push(
      `| GC | \`${gc.uuid}\` (${r.action === 'started' ? 'started by this task' : r.action === 'adopted' ? 'adopted: started elsewhere' : r.action === 'skipped' ? 'already running; skipped' : 'already running'}) |`,
    );
    if (gc.type) lines.push(`| Type | ${mdCell(gc.type)} |`);
    lines.push(`| Status | **${mdCell(gc.status)}**${r.timedOut ? ' (timed out)' : ''} |`);
    lines.push(`| Started | ${mdCell(gc.created_at)} |`);
    if (isTerminalGcStatus(gc.status)) lines.push(`| Finished | ${mdCell(gc.updated_at)} |`);
    if (dur) lines.push(`| Duration | ${formatDuration(dur.seconds)} (${dur.seconds} s, from the ${dur.source}) |`);
    lines.push(`| Blobs deleted | ${gc.blobs_deleted} |`);
    lines.push(`| Freed | ${humanBytes(gc.freed_bytes)} (${gc.freed_bytes} bytes) |`);
  }
  lines.push('');
  if (timeline.length) {
    lines.push('#### Timeline', '', '| time (UTC) | elapsed | event |', '|---|---|---|');
    for (const e of timeline) lines.push(`| ${iso(e.at)} | +${formatDuration((e.at - started) / 1000)} | ${mdCell(e.text)} |`);
    lines.push('');
  }
  const past = history.filter((g) => isTerminalGcStatus(g.status)).slice(0, 10);
  const durations = past.map((g) => gcOwnDurationSeconds(g)).filter((d): d is number => d !== undefined);
  const med = median(durations);
  lines.push(`#### Compared with the last ${past.length} GC${past.length === 1 ? '' : 's'}`, '');
  if (med === undefined) {
    lines.push('No past GCs on record.');
  } else {
    let cmp = '';
    if (dur && gc && isTerminalGcStatus(gc.status) && med > 0) {
      const pct = Math.round(((dur.seconds - med) / med) * 100);
      cmp = `; this one took ${formatDuration(dur.seconds)}, ${pct === 0 ? 'the same as the median' : `${Math.abs(pct)}% ${pct > 0 ? 'longer' : 'shorter'} than the median`}`;
    }
    lines.push(
      `Median duration ${formatDuration(med)} (shortest ${formatDuration(Math.min(...durations))}, longest ${formatDuration(Math.max(...durations))})${cmp}.`,
      '',
    );
    lines.push('| started | type | status | duration | blobs deleted | freed |', '|---|---|---|---|---|---|');
    for (const g of past) {
      const d = gcOwnDurationSeconds(g);
      lines.push(
        `| ${mdCell(g.created_at)} | ${mdCell(g.type ?? '')} | ${mdCell(g.status)} | ${d === undefined ? '?' : formatDuration(d)} | ${g.blobs_deleted} | ${humanBytes(g.freed_bytes)} |`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}

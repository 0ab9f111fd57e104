// What a GC run reports: its outputs (each in its grammar) and the Markdown build summary, with the
// run's own timeline and how this GC compares with the last ones.
import { OutputTable, mdCell } from '../../platform/output';
import { formatDuration } from '../../platform/task';
import {
  GarbageCollection,
  gcOwnDurationSeconds,
  gcTypeInputName,
  isTerminalGcStatus,
  isUnknownGcStatus,
  median,
  parseDoTime,
} from '../../services/digitalocean';
import { MISSING_GC_STATUS } from '../gcwatch/watcher';

export type GcAction = 'started' | 'adopted' | 'skipped' | 'none';

/** One line of the run's own timeline, as it was printed. */
export interface TimelineEntry {
  at: number;
  text: string;
}

/** How long a GC took, and from what: its own timestamps when it ended, else the wall clock. */
export interface GcDuration {
  seconds: number;
  source: "GC's own timestamps" | 'wall clock';
}

/** How the run ended, as the summary tells it. */
export interface RunEnd {
  outcome: 'succeeded' | 'withIssues' | 'failed';
  action: GcAction;
  gc?: GarbageCollection;
  message: string;
  timedOut?: boolean;
}

/** What DoRegistryGarbageCollection@1's outputs read: how the run ended, how long its GC took, the type it started. */
export interface GcReport {
  end: RunEnd;
  duration: GcDuration | undefined;
  startedType: string;
}

const terminalGc = (r: GcReport) => (r.end.gc && isTerminalGcStatus(r.end.gc.status) ? r.end.gc : undefined);
const instant = (at: string | undefined) => (at !== undefined && !Number.isNaN(parseDoTime(at)) ? iso(parseDoTime(at)) : '');

/** The outputs of DoRegistryGarbageCollection@1 ('' where there is nothing to report). */
export const GC_RUN_OUTPUTS: OutputTable<GcReport> = {
  gcUuid: { grammar: 'gcId', optional: true, value: (r) => r.end.gc?.uuid ?? '' },
  gcStatus: { grammar: 'statusWord', optional: true, value: (r) => r.end.gc?.status ?? '' },
  gcType: {
    grammar: 'pickName',
    optional: true,
    value: (r) => gcTypeInputName(r.end.gc?.type) || (r.end.action === 'started' ? r.startedType : ''),
  },
  gcDurationSeconds: { grammar: 'wholeNumber', optional: true, value: (r) => (r.duration ? String(r.duration.seconds) : '') },
  gcBlobsDeleted: { grammar: 'wholeNumber', optional: true, value: (r) => (r.end.gc ? String(r.end.gc.blobs_deleted ?? 0) : '') },
  gcFreedBytes: { grammar: 'wholeNumber', optional: true, value: (r) => (r.end.gc ? String(r.end.gc.freed_bytes ?? 0) : '') },
  gcStartedAt: { grammar: 'timestamp', optional: true, value: (r) => instant(r.end.gc?.created_at) },
  gcFinishedAt: { grammar: 'timestamp', optional: true, value: (r) => instant(terminalGc(r)?.updated_at) },
  gcAction: { grammar: 'pickName', value: (r) => r.end.action },
};

export function humanBytes(n: number): string {
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

export function renderSummary(
  registry: string,
  r: RunEnd,
  dur: GcDuration | undefined,
  history: GarbageCollection[],
  timeline: TimelineEntry[],
  started: number,
  /** The run's outputs: the summary shows the same instants. */
  outputs: Record<string, string>,
): string {
  const gc = r.gc;
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
    const unknown = isUnknownGcStatus(gc.status) && gc.status !== MISSING_GC_STATUS ? ' (a status this task does not know: counted as active)' : '';
    lines.push(`| Status | **${mdCell(gc.status)}**${unknown}${r.timedOut ? ' (timed out)' : ''} |`);
    // The same instants, in the same form, as the gcStartedAt and gcFinishedAt outputs.
    lines.push(`| Started | ${outputs.gcStartedAt || mdCell(gc.created_at)} |`);
    if (isTerminalGcStatus(gc.status)) lines.push(`| Finished | ${outputs.gcFinishedAt || mdCell(gc.updated_at)} |`);
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

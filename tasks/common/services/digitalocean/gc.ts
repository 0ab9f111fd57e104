// The garbage-collection model: DigitalOcean's GC object, checked field by field where it enters,
// and the few facts the workflows derive from it (terminal or active, own duration, type names).
import { ShapeError, stringFieldProblem } from '../../platform/http';
import { GC_ID_MAX, GRAMMARS, RFC3339, STATUS_WORD, STATUS_WORD_MAX } from '../../platform/output';
import { REGISTRY_NAME_PATTERN } from './connection';

export interface GarbageCollection {
  uuid: string;
  registry_name: string;
  status: string;
  type?: string;
  created_at: string;
  updated_at: string;
  blobs_deleted: number;
  freed_bytes: number;
}

export const TERMINAL_GC_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;

/** succeeded|failed|cancelled only; every other status (unknown ones too) is active. */
export function isTerminalGcStatus(status: string): boolean {
  return (TERMINAL_GC_STATUSES as readonly string[]).includes((status ?? '').trim().toLowerCase());
}

/** The statuses DigitalOcean's API description lists for a garbage collection. */
export const KNOWN_GC_STATUSES = [
  'requested',
  'waiting for write jwts to expire',
  'scanning manifests',
  'deleting unreferenced blobs',
  'cancelling',
  ...TERMINAL_GC_STATUSES,
] as const;

/** True for a status DigitalOcean's API description does not list (DigitalOcean adds states). */
export function isUnknownGcStatus(status: string): boolean {
  return !(KNOWN_GC_STATUSES as readonly string[]).includes((status ?? '').trim().toLowerCase());
}

/**
 * A status as the log, the summary and a timeout message name it: `'compacting'`, and for a
 * status this task does not know, that it counts as active (fail closed: only succeeded, failed
 * and cancelled end a GC).
 */
export function describeGcStatus(status: string): string {
  return isUnknownGcStatus(status) ? `'${status}' (a status this task does not know: counted as active)` : `'${status}'`;
}

/** The pickList values of DoRegistryGarbageCollection@1 → DigitalOcean's type strings (with spaces). */
export const GC_TYPES = {
  'untagged-manifests-and-unreferenced-blobs': 'untagged manifests and unreferenced blobs',
  'unreferenced-blobs-only': 'unreferenced blobs only',
  'untagged-manifests-only': 'untagged manifests only',
} as const;
export type GcTypeInput = keyof typeof GC_TYPES;

/** DigitalOcean's type string back to the pickList spelling (unknown strings unchanged). */
export function gcTypeInputName(doType: string | undefined): string {
  if (!doType) return '';
  const hit = (Object.keys(GC_TYPES) as GcTypeInput[]).find((k) => GC_TYPES[k] === doType.trim().toLowerCase());
  return hit ?? doType;
}

/** RFC 3339 with or without fractional seconds; NaN when absent or unparsable. */
export function parseDoTime(value: string | undefined): number {
  if (!value) return NaN;
  return Date.parse(value);
}

/** From the GC's own timestamps (created_at → updated_at); undefined when they do not parse. */
export function gcOwnDurationSeconds(gc: GarbageCollection): number | undefined {
  const a = parseDoTime(gc.created_at);
  const b = parseDoTime(gc.updated_at);
  if (Number.isNaN(a) || Number.isNaN(b) || b < a) return undefined;
  return Math.round((b - a) / 1000);
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The garbage_collections list of a list answer, each entry checked. */
export function gcListOf(data: any, what: string): GarbageCollection[] {
  const items = data?.garbage_collections;
  if (!Array.isArray(items)) throw new ShapeError(`DigitalOcean API ${what}`, 'garbage_collections', 'is not a list');
  return items.map((it: unknown, i: number) => normalizeGc(it, what, `garbage_collections[${i}]`));
}

const GC_ID_GRAMMAR = 'an id of letters, digits, `.`, `_`, `~` and `-` (first a letter or digit)';
const STATUS_GRAMMAR = 'a status word (a letter, then letters, digits, spaces, `-` or `_`)';

/**
 * A GC object from DigitalOcean, checked field by field for what the task does with each (the id
 * goes into a URL path and an output, the status into logs and an output, the times into
 * arithmetic): nothing out of grammar reaches a log line, a summary or an output. A field that does
 * not fit is a ShapeError naming the field and why, never its value. An unknown `type` is dropped
 * (it is informational); an unknown well-formed status is kept (it counts as active).
 */
export function normalizeGc(raw: unknown, what = 'garbage collection', at = 'garbage_collection'): GarbageCollection {
  const where = `DigitalOcean API ${what} answered a garbage_collection`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ShapeError(where, at, raw === undefined ? 'is missing' : 'is not an object');
  const r = raw as Record<string, unknown>;
  const str = (field: string, max: number, ok: (v: string) => boolean, grammar: string): string => {
    const why = stringFieldProblem(r[field], max, ok, grammar);
    if (why !== undefined) throw new ShapeError(where, field, why);
    return r[field] as string;
  };
  const count = (field: string): number => {
    const v = r[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new ShapeError(where, field, v === undefined ? 'is missing' : 'is not a whole number of at least 0');
    return v;
  };
  const time = (v: string) => RFC3339.test(v) && !Number.isNaN(Date.parse(v));
  const type = typeof r.type === 'string' ? r.type.trim().toLowerCase() : undefined;
  return {
    uuid: str('uuid', GC_ID_MAX, GRAMMARS.gcId, GC_ID_GRAMMAR),
    registry_name: str('registry_name', 63, (v) => REGISTRY_NAME_PATTERN.test(v), "a registry name in DigitalOcean's grammar"),
    status: str('status', STATUS_WORD_MAX, (v) => STATUS_WORD.test(v), STATUS_GRAMMAR),
    ...(type !== undefined && (Object.values(GC_TYPES) as string[]).includes(type) ? { type } : {}),
    created_at: str('created_at', 40, time, 'an RFC 3339 timestamp'),
    updated_at: str('updated_at', 40, time, 'an RFC 3339 timestamp'),
    blobs_deleted: count('blobs_deleted'),
    freed_bytes: count('freed_bytes'),
  };
}

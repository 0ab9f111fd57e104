// The garbage-collection model: DigitalOcean's GC object, checked field by field where it enters,
// and the few facts the workflows derive from it (terminal or active, own duration, type names).
import { UnexpectedAnswerError } from '../../platform/http';
import { GRAMMARS, RFC3339, STATUS_WORD } from '../../platform/output';
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
  if (!Array.isArray(items)) throw new UnexpectedAnswerError(`DigitalOcean API ${what} answered without a garbage_collections list`);
  return items.map((it: unknown) => normalizeGc(it, what));
}

/**
 * A GC object from DigitalOcean, checked field by field where it enters: nothing out of grammar
 * reaches a log line, a summary or an output. A field that does not fit is an UnexpectedAnswerError
 * naming the field (never its value). An unknown `type` is dropped (it is informational).
 */
export function normalizeGc(raw: unknown, what = 'garbage collection'): GarbageCollection {
  const bad = (field: string) =>
    new UnexpectedAnswerError(`DigitalOcean API ${what} answered a garbage_collection whose '${field}' is missing or out of grammar`);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('garbage_collection');
  const r = raw as Record<string, unknown>;
  const str = (field: string, ok: (v: string) => boolean): string => {
    const v = r[field];
    if (typeof v !== 'string' || !ok(v)) throw bad(field);
    return v;
  };
  const count = (field: string): number => {
    const v = r[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(field);
    return v;
  };
  const time = (v: string) => RFC3339.test(v) && !Number.isNaN(Date.parse(v));
  const type = typeof r.type === 'string' ? r.type.trim().toLowerCase() : undefined;
  return {
    uuid: str('uuid', GRAMMARS.uuid),
    registry_name: str('registry_name', (v) => REGISTRY_NAME_PATTERN.test(v)),
    status: str('status', (v) => STATUS_WORD.test(v)),
    ...(type !== undefined && (Object.values(GC_TYPES) as string[]).includes(type) ? { type } : {}),
    created_at: str('created_at', time),
    updated_at: str('updated_at', time),
    blobs_deleted: count('blobs_deleted'),
    freed_bytes: count('freed_bytes'),
  };
}

// The registries and their garbage collections, as DigitalOcean keeps them: each GC walks its steps
// from created_at (or is cancelled, forced terminal by a test, or a stale record). The DigitalOcean
// API (digitalocean.ts) shows and changes them; the token endpoint (token.ts) refuses push scopes
// while one is active.
import * as crypto from 'crypto';
import { isoSeconds, randInt } from './http';
import type { GcRecord, GcStep } from './types';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const CANCEL_MS = 500;

export interface GcInternal {
  uuid: string;
  registry: string;
  type: string;
  createdAt: number;
  steps: GcStep[];
  finalStatus: string;
  blobs: number;
  freed: number;
  cancelAt?: number;
  forced?: { at: number; status: string };
  /** Listed with a non-terminal status, but not the active GC (a stale record). */
  stale?: { status: string; updatedAt: number };
}

export interface GcState {
  status: string;
  updatedAt: number;
  terminalAt?: number;
}

export function gcStateAt(gc: GcInternal, now: number): GcState {
  if (gc.stale) return { status: gc.stale.status, updatedAt: gc.stale.updatedAt, terminalAt: gc.stale.updatedAt };
  if (gc.forced && now >= gc.forced.at) {
    return { status: gc.forced.status, updatedAt: gc.forced.at, terminalAt: TERMINAL.has(gc.forced.status) ? gc.forced.at : undefined };
  }
  if (gc.cancelAt !== undefined) {
    if (now < gc.cancelAt + CANCEL_MS) return { status: 'cancelling', updatedAt: gc.cancelAt };
    return { status: 'cancelled', updatedAt: gc.cancelAt + CANCEL_MS, terminalAt: gc.cancelAt + CANCEL_MS };
  }
  let t = gc.createdAt;
  for (const step of gc.steps) {
    const end = t + step.seconds * 1000;
    if (now < end) return { status: step.status, updatedAt: t };
    t = end;
  }
  return { status: gc.finalStatus, updatedAt: t, terminalAt: TERMINAL.has(gc.finalStatus) ? t : undefined };
}

export function gcRecord(gc: GcInternal, now: number): GcRecord {
  const s = gcStateAt(gc, now);
  const done = s.status === 'succeeded';
  return {
    uuid: gc.uuid,
    registry_name: gc.registry,
    status: s.status,
    type: gc.type,
    created_at: isoSeconds(gc.createdAt),
    // DigitalOcean stamps a GC to the second (truncated): a GC may have ended up to a second after its updated_at.
    updated_at: isoSeconds(s.updatedAt),
    blobs_deleted: done ? gc.blobs : 0,
    freed_bytes: done ? gc.freed : 0,
  };
}

export type StartGcOptions = { steps?: GcStep[]; finalStatus?: string; type?: string; startedSecondsAgo?: number };

/** The account's registries (the first is the default) and each one's GCs, newest first. */
export class Registries {
  readonly names: string[];
  private readonly created = new Map<string, number>();
  private readonly gcList = new Map<string, GcInternal[]>(); // newest first

  constructor(
    names: string[] | undefined,
    private readonly gcSteps: GcStep[],
    private readonly gcFinal: string,
  ) {
    this.names = names && names.length > 0 ? [...names] : ['demo-registry'];
    const base = Date.now() - 400 * 86400_000;
    this.names.forEach((r, i) => {
      this.created.set(r, base + i * 86400_000);
      this.gcList.set(r, []);
    });
  }

  has(name: string): boolean {
    return this.gcList.has(name);
  }

  createdAt(name: string): number | undefined {
    return this.created.get(name);
  }

  /** A registry's GCs, newest first (empty for an unknown registry). */
  list(registry: string): GcInternal[] {
    return this.gcList.get(registry) ?? [];
  }

  private reg(registry?: string): string {
    return registry ?? this.names[0];
  }

  private ensure(name: string): void {
    if (!this.gcList.has(name)) throw new Error(`emulator: unknown registry '${name}' (known: ${this.names.join(', ')})`);
  }

  active(registry: string, now = Date.now()): GcInternal | undefined {
    return this.list(registry).find((g) => gcStateAt(g, now).terminalAt === undefined);
  }

  /** A GC started through the API (or by startGc) with the emulator's own steps unless given others. */
  create(registry: string, type: string, steps: GcStep[] = this.gcSteps, finalStatus: string = this.gcFinal): GcInternal {
    const gc: GcInternal = {
      uuid: crypto.randomUUID(),
      registry,
      type,
      createdAt: Date.now(),
      steps: steps.map((s) => ({ ...s })),
      finalStatus,
      blobs: randInt(0, 500),
      freed: randInt(0, 5_000_000_000),
    };
    this.gcList.get(registry)!.unshift(gc);
    return gc;
  }

  /** Cancels the active GC `uuid` (PUT {"cancel": true}); undefined when it is not the active one. */
  cancel(registry: string, uuid: string | undefined): GcRecord | undefined {
    const nowC = Date.now();
    const gc = this.active(registry, nowC);
    if (!gc || gc.uuid !== uuid) return undefined;
    if (gc.cancelAt === undefined && !(gc.forced && gc.forced.at <= nowC)) gc.cancelAt = nowC;
    else if (gc.forced) {
      // a forced non-terminal status (finishGc with a custom status): cancel from now
      gc.forced = undefined;
      gc.cancelAt = nowC;
    }
    return gcRecord(gc, Date.now());
  }

  // ------------------------------------------------------------------ test controls

  startGc(registry?: string, opts: StartGcOptions = {}): GcRecord {
    const r = this.reg(registry);
    this.ensure(r);
    if (this.active(r)) throw new Error(`emulator: a garbage collection is already active for ${r}`);
    const gc = this.create(r, opts.type ?? 'untagged manifests and unreferenced blobs', opts.steps ?? this.gcSteps, opts.finalStatus ?? this.gcFinal);
    // Steps count from created_at, so a backdated GC is already that far along.
    if (opts.startedSecondsAgo) gc.createdAt -= opts.startedSecondsAgo * 1000;
    return gcRecord(gc, Date.now());
  }

  finishGc(registry?: string, status = 'succeeded'): void {
    const r = this.reg(registry);
    this.ensure(r);
    const gc = this.active(r);
    if (gc) gc.forced = { at: Date.now(), status };
  }

  activeGc(registry?: string): GcRecord | undefined {
    const r = this.reg(registry);
    this.ensure(r);
    const now = Date.now();
    const gc = this.active(r, now);
    return gc ? gcRecord(gc, now) : undefined;
  }

  gcs(registry?: string): GcRecord[] {
    const r = this.reg(registry);
    this.ensure(r);
    const now = Date.now();
    return this.gcList.get(r)!.map((g) => gcRecord(g, now));
  }

  /** durationsSeconds[0] is the most recent past GC; each ended at least an hour before the previous one started. */
  addPastGcs(registry: string, durationsSeconds: number[]): void {
    const r = this.reg(registry);
    this.ensure(r);
    const list = this.gcList.get(r)!;
    // place them before everything already there (older than the oldest existing entry)
    let end = Math.min(Date.now(), ...list.map((g) => g.createdAt)) - 3600_000;
    for (const d of durationsSeconds) {
      const created = Math.floor((end - d * 1000) / 1000) * 1000;
      const gc: GcInternal = {
        uuid: crypto.randomUUID(),
        registry: r,
        type: 'untagged manifests and unreferenced blobs',
        createdAt: created,
        steps: [{ status: 'scanning manifests', seconds: d }],
        finalStatus: 'succeeded',
        blobs: randInt(0, 500),
        freed: randInt(0, 5_000_000_000),
      };
      list.push(gc);
      end = created - 3600_000 * 6;
    }
  }

  addStaleGc(registry: string, status: string, updatedSecondsAgo: number): GcRecord {
    const r = this.reg(registry);
    this.ensure(r);
    const updatedAt = Date.now() - updatedSecondsAgo * 1000;
    const gc: GcInternal = {
      uuid: crypto.randomUUID(),
      registry: r,
      type: 'untagged manifests and unreferenced blobs',
      createdAt: updatedAt - 60_000,
      steps: [],
      finalStatus: 'succeeded',
      blobs: 0,
      freed: 0,
      stale: { status, updatedAt },
    };
    this.gcList.get(r)!.unshift(gc);
    return gcRecord(gc, Date.now());
  }
}

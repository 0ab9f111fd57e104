// What the guard knows while it waits, shared by its watchers and the result it reports.
import { Logger } from '../../platform/output';
import { DigitalOceanClient, GarbageCollection } from '../../services/digitalocean';
import { StageState, TimelineClient } from '../../services/timeline';
import { GcWatcher } from '../gcwatch/watcher';
import { GuardSettings } from './settings';

export interface GuardDeps {
  client?: DigitalOceanClient;
  timeline?: TimelineClient;
  log: Logger;
  /** The stage this job runs in (System.StageName), for the dependsOn advice. */
  currentStage?: string;
}

export interface GuardState {
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
  /** The one GC watcher (created at the first poll, once the registry is known). */
  watcher?: GcWatcher;
  inactiveSince?: number;
  gcWasActive: boolean;
  observed: string;
  /** The GC last seen active. */
  current?: GarbageCollection;
  estimated?: boolean;
  /** The request being waited for ('' between requests), for the timed-out message. */
  inFlight: string;
  polls: number;
}

/** Runs one request, noting what is in flight (for the message when the deadline ends it). */
export async function during<T>(st: GuardState, what: string, fn: () => Promise<T>): Promise<T> {
  st.inFlight = what;
  const v = await fn();
  st.inFlight = '';
  return v;
}

/**
 * When the settle time after the last GC ends (0: no GC ended while watched, nor just before the
 * first look): settleSeconds after the watcher's settle start, which is never before the GC's real end.
 */
export function settleEndOf(st: GuardState, settings: GuardSettings): number {
  const from = st.watcher?.settleFrom;
  return from === undefined ? 0 : from + settings.settleSeconds * 1000;
}

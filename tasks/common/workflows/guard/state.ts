// What the guard knows while it waits, shared by its watchers and the result it reports.
import { Logger } from '../../platform/output';
import { DigitalOceanClient, GarbageCollection } from '../../services/digitalocean';
import { StageState, TimelineClient } from '../../services/timeline';
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
export async function during<T>(st: GuardState, what: string, fn: () => Promise<T>): Promise<T> {
  st.inFlight = what;
  const v = await fn();
  st.inFlight = '';
  return v;
}

/** When the settle time after the GC last seen active ends (0: no GC was seen active). */
export function settleEndOf(st: GuardState, settings: GuardSettings): number {
  return st.lastActiveAt === undefined ? 0 : st.lastActiveAt + settings.settleSeconds * 1000;
}

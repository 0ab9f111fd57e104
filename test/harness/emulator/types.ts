// The emulator's public vocabulary: its options, the Emulator handle tests drive, and the records it
// keeps. The services (digitalocean.ts, token.ts, front.ts, timeline.ts, faults.ts) implement it;
// index.ts starts them.
import type { AnswerFault, Fault } from './faults';

export interface GcStep {
  status: string;
  seconds: number;
} // status shown for that many seconds
export type EndpointKey =
  | 'registry'
  | 'gc-start'
  | 'gc-get'
  | 'gc-list'
  | 'gc-cancel'
  | 'credentials'
  | 'tags-list'
  | 'tag-delete'
  | 'manifest-delete'
  | 'token'
  | 'timeline'
  | 'front';
export interface StageSpec {
  name: string;
  state: 'pending' | 'inProgress' | 'completed';
  result?: string;
  startAfterSeconds?: number;
  completeAfterSeconds?: number;
  displayName?: string;
  /** Addition: the stage that holds the current job (its Phase/Job records hang under it).
   *  Default: the first stage whose initial state is 'inProgress' (else none: parentId null). */
  current?: boolean;
}
export interface RequestRecord {
  at: number /*ms epoch*/;
  method: string;
  path: string;
  endpoint: EndpointKey | 'other';
  status: number;
  token?: string /* which API token was used, for per-token counting */;
}
export interface GcRecord {
  uuid: string;
  registry_name: string;
  status: string;
  type: string;
  created_at: string;
  updated_at: string;
  blobs_deleted: number;
  freed_bytes: number;
}
export interface EmulatorOptions {
  token?: string; // accepted DO API token; default 'dop_v1_emulator_token'
  tokenScopes?: string[]; // its scopes; default ['registry:read', 'registry:update'] (deletes need 'registry:delete')
  extraTokens?: Record<string, string[]>; // more accepted tokens -> scopes
  registries?: string[]; // default ['demo-registry']; >1 makes GET /v2/registry answer 412
  upstreamRegistry?: string; // e.g. 'http://127.0.0.1:5000' (a real distribution registry); when set, a token-auth front is started
  tailSeconds?: number; // push-scope tokens still refused this long after a GC turns terminal; default 0
  frontLatencyMs?: number; // the registry front answers each request this much later (a registry across a network); default 0
  gcSteps?: GcStep[]; // lifecycle for GCs started through the API
  gcFinalStatus?: string; // default 'succeeded'
  rateLimitPerMinute?: number; // default 250 (per token, sliding 60 s window; over it: 429 + retry-after)
  rateLimitPerHour?: number; // default 5000
  legacyOnly?: boolean; // new /v2/registries/... paths answer 404 (to test the fallback to /v2/registry/...)
  buildAccessToken?: string; // the job's System.AccessToken accepted by the timeline endpoint; default 'ado_job_access_token'
  project?: string;
  buildId?: string; // defaults 'demo-project', '42'
}
export interface Emulator {
  apiUrl: string; // 'http://127.0.0.1:PORT' : DO API, /v2/registry/auth, and the ADO REST API
  registryHost: string; // '127.0.0.1:PORT2' of the token-auth registry front ('' without upstreamRegistry)
  collectionUri: string; // `${apiUrl}/ado/` (ends with '/', like System.CollectionUri)
  project: string;
  buildId: string;
  token: string;
  buildAccessToken: string;
  requests: RequestRecord[];
  startGc(registry?: string, opts?: { steps?: GcStep[]; finalStatus?: string; type?: string; startedSecondsAgo?: number }): GcRecord; // a GC started "elsewhere" (another stage); startedSecondsAgo backdates it
  finishGc(registry?: string, status?: string): void; // force the active GC terminal now (default 'succeeded')
  activeGc(registry?: string): GcRecord | undefined;
  gcs(registry?: string): GcRecord[]; // newest first
  addPastGcs(registry: string, durationsSeconds: number[]): void; // history for the list endpoint (succeeded, in the past)
  /** A record the list shows with a non-terminal status (updated that long ago) while GET says none is active. */
  addStaleGc(registry: string, status: string, updatedSecondsAgo: number): GcRecord;
  setStages(stages: StageSpec[]): void; // timeline stage script; times count from this call
  fault(endpoint: EndpointKey, fault: Fault | AnswerFault): void;
  clearFaults(): void;
  tokenRequests: Array<{ at: number; scopes: string[]; granted: boolean; reason?: string }>;
  stop(): Promise<void>; // closes both listeners and all sockets promptly
  // ---- additions ----
  /** The registry names, first one is the default. */
  registries: string[];
  /** Issues docker credentials as GET .../docker-credentials would (no HTTP, no rate limit). */
  dockerCredentials(opts?: { readWrite?: boolean; expirySeconds?: number }): { username: string; password: string; auth: string };
  /** Requests logged for one endpoint (and optionally one token). */
  count(endpoint: EndpointKey | 'other', token?: string): number;
}

export const DEFAULT_TOKEN = 'dop_v1_emulator_token';
export const DEFAULT_BUILD_ACCESS_TOKEN = 'ado_job_access_token';
export const TOKEN_SERVICE = 'registry.digitalocean.com';
export const DEFAULT_GC_STEPS: GcStep[] = [
  { status: 'requested', seconds: 0.3 },
  { status: 'waiting for write JWTs to expire', seconds: 0.5 },
  { status: 'scanning manifests', seconds: 0.5 },
  { status: 'deleting unreferenced blobs', seconds: 0.5 },
];
export const GC_TYPES = ['untagged manifests only', 'unreferenced blobs only', 'untagged manifests and unreferenced blobs'];

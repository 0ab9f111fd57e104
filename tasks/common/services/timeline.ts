import { UserError, errorMessage } from '../platform/errors';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  HttpResponse,
  HttpStatusError,
  ShapeError,
  UnexpectedAnswerError,
  shapeAwareClassifier,
  shapeGiveUp,
  jsonBody,
  jsonErrorObject,
  request,
  retryAfterMs,
} from '../platform/http';
import { readEndpointAuthParam } from '../platform/inputs';
import { withRetry } from '../platform/retry';
import { agentVariable } from '../platform/agent';

export interface StageState {
  /** The display name of the stage. */
  name: string;
  /** The YAML stage name (what `dependsOn` and `waitForStages` use). */
  identifier: string;
  /** pending | inProgress | completed */
  state: string;
  /** succeeded | succeededWithIssues | failed | canceled | skipped | abandoned, or null while running. */
  result: string | null;
}

/** TimelineRecordState, as the REST API spells it. */
const STAGE_STATES = ['pending', 'inProgress', 'completed'];
/** TaskResult, every value Azure DevOps publishes for a timeline record (manual queues included). */
const STAGE_RESULTS = ['succeeded', 'succeededWithIssues', 'failed', 'canceled', 'skipped', 'abandoned', 'manuallyQueued', 'dependentOnManualQueue'];
/** A YAML stage name: letters, digits and '_' (what `dependsOn` accepts). */
const STAGE_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

/** The stage records of a timeline answer, each checked against the timeline's grammar. */
function stagesOf(data: unknown): StageState[] {
  const records = (data as { records?: unknown })?.records;
  if (!Array.isArray(records)) throw new ShapeError('the build timeline answered', 'records', records === undefined ? 'is missing' : 'is not a list');
  const stages: StageState[] = [];
  for (const r of records as Array<Record<string, unknown>>) {
    if (!r || r.type !== 'Stage') continue;
    const identifier = String(r.identifier ?? r.refName ?? r.name ?? '');
    const state = String(r.state ?? 'pending');
    const result = r.result === undefined || r.result === null ? null : String(r.result);
    const bad = (field: string, why: string) => new ShapeError('the build timeline answered a stage record', field, why);
    if (!STAGE_IDENTIFIER.test(identifier)) throw bad('identifier', "is not a YAML stage name (letters, digits and '_', at most 100)");
    if (!STAGE_STATES.includes(state)) throw bad('state', `is not a timeline record state (${STAGE_STATES.join(', ')})`);
    if (result !== null && !STAGE_RESULTS.includes(result)) throw bad('result', 'is not a task result');
    stages.push({ name: typeof r.name === 'string' ? r.name : identifier, identifier, state, result });
  }
  return stages;
}

/** Azure DevOps' JSON error body: an object with string `typeKey` and `message`. */
function isAdoError(res: HttpResponse): boolean {
  const v = jsonErrorObject(res);
  return typeof v?.typeKey === 'string' && typeof v?.message === 'string';
}

/** The current run's build timeline (its stages), read with the job's own access token. */
export class TimelineClient {
  private readonly url: string;
  private readonly authorization: string;
  private count = 0;

  constructor(
    collectionUri: string,
    project: string,
    buildId: string,
    accessToken: string,
    private readonly options: { requestTimeoutMs?: number; log?: (line: string) => void } = {},
  ) {
    const base = collectionUri.endsWith('/') ? collectionUri : collectionUri + '/';
    this.authorization = `Bearer ${accessToken}`;
    this.url = new URL(`${encodeURIComponent(project)}/_apis/build/builds/${encodeURIComponent(buildId)}/timeline?api-version=7.1`, base).href;
  }

  get requestCount(): number {
    return this.count;
  }

  async listStages(signal?: AbortSignal): Promise<StageState[]> {
    const timeoutMs = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const { value } = await withRetry(
      async (_attempt, attemptSignal) => {
        this.count++;
        const res = await request({
          method: 'GET',
          url: this.url,
          headers: { Authorization: this.authorization, Accept: 'application/json' },
          kind: 'timeline',
          signal: attemptSignal,
          timeoutMs,
        });
        if (res.status === 401 || res.status === 403) {
          throw new UserError(
            `The Azure DevOps build timeline answered ${res.status}: the job's access token (System.AccessToken) may not read this build; check the project's job authorization scope.`,
          );
        }
        if (res.status === 404) {
          // "Not found" only from Azure DevOps' own JSON error (typeKey and message): a proxy's
          // or router's 404 page says nothing about the build, and is retried like any odd answer.
          if (isAdoError(res)) throw new UserError(`The Azure DevOps build timeline of this build was not found (404).`);
          throw new UnexpectedAnswerError(
            `the build timeline answered 404 with a body that is not Azure DevOps' error (${res.mediaType || 'no content type'}, ${res.body.length} bytes)`,
          );
        }
        if (res.status !== 200) throw new HttpStatusError(`the build timeline answered ${res.status}`, res.status, retryAfterMs(res.headers));
        return stagesOf(jsonBody(res, 'the build timeline'));
      },
      {
        budget: {
          maxAttempts: 5,
          attemptTimeoutSeconds: Math.ceil(timeoutMs / 1000) + 1,
          initialBackoffSeconds: 1,
          maxBackoffSeconds: 15,
          totalTimeoutSeconds: 180,
        },
        classify: shapeAwareClassifier(),
        signal,
        onFailure: (r) => {
          if (r.nextWaitMs !== undefined)
            this.options.log?.(`Build timeline: ${r.failure.reason} (${errorMessage(r.error)}); retrying in ${(r.nextWaitMs / 1000).toFixed(1)}s.`);
        },
        giveUp: (failed) =>
          failed.lastError instanceof ShapeError
            ? shapeGiveUp(failed.lastError, failed.failure, failed.attempts)
            : new Error(`Reading the build timeline failed: ${failed.message}`),
      },
    );
    return value;
  }
}

/** What readTimelineClient needs and did not find (for error messages). */
export function missingTimelineSettings(): string[] {
  const missing: string[] = [];
  if (!collectionUri()) missing.push('System.CollectionUri (SYSTEM_COLLECTIONURI)');
  if (!project()) missing.push('System.TeamProject (SYSTEM_TEAMPROJECT)');
  if (!(agentVariable('BUILD_BUILDID') ?? '').trim()) missing.push('Build.BuildId (BUILD_BUILDID)');
  if (!accessToken()) missing.push("the job's access token (SystemVssConnection / SYSTEM_ACCESSTOKEN)");
  return missing;
}

function collectionUri(): string {
  return (agentVariable('SYSTEM_COLLECTIONURI') || agentVariable('SYSTEM_TEAMFOUNDATIONCOLLECTIONURI') || '').trim();
}

function project(): string {
  return (agentVariable('SYSTEM_TEAMPROJECT') || agentVariable('SYSTEM_TEAMPROJECTID') || '').trim();
}

function accessToken(): string {
  return (readEndpointAuthParam('SystemVssConnection', 'AccessToken') || agentVariable('SYSTEM_ACCESSTOKEN') || '').trim();
}

/**
 * From SYSTEM_COLLECTIONURI (System.CollectionUri), SYSTEM_TEAMPROJECT (or
 * SYSTEM_TEAMPROJECTID), BUILD_BUILDID and the job's access token from the
 * SystemVssConnection endpoint (falling back to SYSTEM_ACCESSTOKEN). undefined
 * when not in a pipeline run; with `required` (stages were requested) a
 * UserError naming what is missing instead.
 */
export function readTimelineClient(required = false, options: { log?: (line: string) => void } = {}): TimelineClient | undefined {
  const missing = missingTimelineSettings();
  if (missing.length > 0) {
    if (required) {
      throw new UserError(
        `Input 'waitForStages' needs this run's build timeline, but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set (is this a pipeline run?).`,
      );
    }
    return undefined;
  }
  return new TimelineClient(collectionUri(), project(), (agentVariable('BUILD_BUILDID') ?? '').trim(), accessToken(), options);
}

import { AxiosInstance } from 'axios';
import { CancelledError, UserError, errorMessage } from './errors';
import { DEFAULT_REQUEST_TIMEOUT_MS, createHttpClient, isTransientNetworkError } from './http';
import { readEndpointAuthParam } from './inputs';
import { FailureClass, RetryError, withRetry } from './retry';

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

class TimelineHttpError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** The current run's build timeline (its stages), read with the job's own access token. */
export class TimelineClient {
  private readonly http: AxiosInstance;
  private readonly path: string;
  private count = 0;

  constructor(
    collectionUri: string,
    project: string,
    buildId: string,
    accessToken: string,
    private readonly options: { requestTimeoutMs?: number; log?: (line: string) => void } = {},
  ) {
    const base = collectionUri.endsWith('/') ? collectionUri : collectionUri + '/';
    this.http = createHttpClient(base, {
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/json' },
    });
    this.path = `${encodeURIComponent(project)}/_apis/build/builds/${encodeURIComponent(buildId)}/timeline`;
  }

  get requestCount(): number {
    return this.count;
  }

  async listStages(signal?: AbortSignal): Promise<StageState[]> {
    const classify = (err: unknown): FailureClass => {
      if (err instanceof TimelineHttpError) {
        if (err.status >= 500 || err.status === 429 || err.status === 0) return { kind: 'transient', reason: `http-${err.status}` };
        return { kind: 'permanent', reason: `http-${err.status}` };
      }
      if (isTransientNetworkError(err) || (err as { code?: string })?.code === 'ERR_CANCELED') return { kind: 'transient', reason: 'network' };
      return { kind: 'permanent', reason: 'error' };
    };
    try {
      const { value } = await withRetry(
        async (_attempt, attemptSignal) => {
          this.count++;
          const res = await this.http.get(this.path, { params: { 'api-version': '7.1' }, signal: attemptSignal });
          if (res.status === 401 || res.status === 403) {
            throw new UserError(
              `The Azure DevOps build timeline answered ${res.status}: the job's access token (System.AccessToken) may not read this build; check the project's job authorization scope.`,
            );
          }
          if (res.status === 404) {
            throw new UserError(`The Azure DevOps build timeline of build ${this.path} was not found (404).`);
          }
          if (res.status < 200 || res.status >= 300) throw new TimelineHttpError(`build timeline answered ${res.status}`, res.status);
          const data = typeof res.data === 'string' ? JSON.parse(res.data) : res.data;
          const records: any[] = Array.isArray(data?.records) ? data.records : [];
          return records
            .filter((r) => r && String(r.type) === 'Stage')
            .map((r) => ({
              name: String(r.name ?? r.identifier ?? ''),
              identifier: String(r.identifier ?? r.refName ?? r.name ?? ''),
              state: String(r.state ?? 'pending'),
              result: r.result === undefined || r.result === null ? null : String(r.result),
            }));
        },
        {
          budget: { maxAttempts: 5, attemptTimeoutSeconds: Math.ceil((this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS) / 1000) + 1, initialBackoffSeconds: 1, maxBackoffSeconds: 15, totalTimeoutSeconds: 180 },
          classify: (err) => (err instanceof SyntaxError ? { kind: 'transient', reason: 'malformed JSON' } : classify(err)),
          signal,
          onFailure: (r) => {
            if (r.nextWaitMs !== undefined) this.options.log?.(`Build timeline: ${r.failure.reason} (${errorMessage(r.error)}); retrying in ${(r.nextWaitMs / 1000).toFixed(1)}s.`);
          },
        },
      );
      return value;
    } catch (err) {
      if (err instanceof CancelledError || err instanceof UserError) throw err;
      if (err instanceof RetryError) throw new Error(`Reading the build timeline failed: ${err.message}`);
      throw err;
    }
  }
}

/** What readTimelineClient needs and did not find (for error messages). */
export function missingTimelineSettings(): string[] {
  const missing: string[] = [];
  if (!collectionUri()) missing.push('System.CollectionUri (SYSTEM_COLLECTIONURI)');
  if (!project()) missing.push('System.TeamProject (SYSTEM_TEAMPROJECT)');
  if (!(process.env['BUILD_BUILDID'] ?? '').trim()) missing.push('Build.BuildId (BUILD_BUILDID)');
  if (!accessToken()) missing.push("the job's access token (SystemVssConnection / SYSTEM_ACCESSTOKEN)");
  return missing;
}

function collectionUri(): string {
  return (process.env['SYSTEM_COLLECTIONURI'] || process.env['SYSTEM_TEAMFOUNDATIONCOLLECTIONURI'] || '').trim();
}

function project(): string {
  return (process.env['SYSTEM_TEAMPROJECT'] || process.env['SYSTEM_TEAMPROJECTID'] || '').trim();
}

function accessToken(): string {
  return (readEndpointAuthParam('SystemVssConnection', 'AccessToken') || process.env['SYSTEM_ACCESSTOKEN'] || '').trim();
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
  return new TimelineClient(collectionUri(), project(), process.env['BUILD_BUILDID']!.trim(), accessToken(), options);
}

// The Azure DevOps build timeline (GET {collection}/{project}/_apis/build/builds/{id}/timeline on the
// API listener, under /ado/): the job's access token is required; the stages follow the script a test
// set with setStages (times count from that call), and the current job's Phase and Job records hang
// under the stage that holds it.
import * as crypto from 'crypto';
import * as http from 'http';
import { URL } from 'url';
import { basic, bearer, isoMillis, send } from './http';
import type { RequestRecord, StageSpec } from './types';

interface StageInternal {
  spec: StageSpec;
  id: string;
  order: number;
}

export class Timeline {
  private stages: StageInternal[] = [];
  private stagesSetAt = Date.now();
  private readonly phaseId = crypto.randomUUID();
  private readonly jobId = crypto.randomUUID();

  constructor(
    private readonly buildAccessToken: string,
    private readonly project: string,
    private readonly buildId: string,
    /** System.CollectionUri, known once the API listener listens. */
    private readonly collectionUri: () => string,
  ) {}

  setStages(stages: StageSpec[]): void {
    this.stagesSetAt = Date.now();
    this.stages = stages.map((spec, i) => ({ spec: { ...spec }, id: crypto.randomUUID(), order: i + 1 }));
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord, url: URL): void {
    const bt = bearer(req);
    const bb = basic(req);
    const ok = bt === this.buildAccessToken || bb?.pass === this.buildAccessToken;
    if (!ok) {
      rec.status = 401;
      res.writeHead(401, {
        'content-type': 'text/plain; charset=utf-8',
        'www-authenticate': 'Bearer authorization_uri=https://login.microsoftonline.com/common',
      });
      res.end('Access denied. The token is missing, invalid or expired.');
      return;
    }
    const m = /^\/ado\/([^/]+)\/_apis\/build\/builds\/([^/]+)\/timeline(?:\/([^/]*))?\/?$/.exec(url.pathname);
    const adoErr = (status: number, typeKey: string, message: string): void =>
      send(
        res,
        rec,
        status,
        JSON.stringify({
          $id: '1',
          innerException: null,
          message,
          typeName: `Microsoft.TeamFoundation.Build.WebApi.${typeKey}, Microsoft.TeamFoundation.Build2.WebApi`,
          typeKey,
          errorCode: 0,
          eventId: 3000,
        }),
      );
    if (!m || (req.method ?? 'GET').toUpperCase() !== 'GET') return adoErr(404, 'RouteNotFoundException', 'The requested resource was not found.');
    const project = decodeURIComponent(m[1]);
    const buildId = decodeURIComponent(m[2]);
    if (project !== this.project) return adoErr(404, 'ProjectDoesNotExistWithNameException', `TF200016: The following project does not exist: ${project}.`);
    if (buildId !== this.buildId) return adoErr(404, 'BuildNotFoundException', `The requested build ${buildId} could not be found.`);
    const records = this.records(Date.now());
    send(
      res,
      rec,
      200,
      JSON.stringify({
        records,
        lastChangedBy: '00000000-0000-0000-0000-000000000000',
        lastChangedOn: isoMillis(Date.now()),
        id: this.phaseId,
        changeId: records.length,
        url: `${this.collectionUri()}${this.project}/_apis/build/builds/${this.buildId}/timeline`,
        count: records.length,
      }),
    );
  }

  private records(now: number): Record<string, unknown>[] {
    const elapsed = (now - this.stagesSetAt) / 1000;
    const at = (s: number): string => isoMillis(this.stagesSetAt + s * 1000);
    const base = (o: Record<string, unknown>): Record<string, unknown> => ({
      previousAttempts: [],
      id: '',
      parentId: null,
      type: 'Stage',
      name: '',
      startTime: null,
      finishTime: null,
      currentOperation: null,
      percentComplete: null,
      state: 'pending',
      result: null,
      resultCode: null,
      changeId: 1,
      lastModified: isoMillis(now),
      workerName: null,
      order: 1,
      details: null,
      errorCount: 0,
      warningCount: 0,
      url: null,
      log: null,
      task: null,
      attempt: 1,
      identifier: null,
      ...o,
    });
    const out: Record<string, unknown>[] = [];
    const currentStage: StageInternal | undefined = this.stages.find((s) => s.spec.current) ?? this.stages.find((s) => s.spec.state === 'inProgress');
    for (const st of this.stages) {
      const spec = st.spec;
      let state: string = spec.state;
      let startTime: string | null = null;
      let finishTime: string | null = null;
      if (state === 'inProgress') startTime = at(0);
      if (state === 'completed') {
        startTime = at(0);
        finishTime = at(0);
      }
      if (state === 'pending' && spec.startAfterSeconds !== undefined && elapsed >= spec.startAfterSeconds) {
        state = 'inProgress';
        startTime = at(spec.startAfterSeconds);
      }
      if (state !== 'completed' && spec.completeAfterSeconds !== undefined && elapsed >= spec.completeAfterSeconds) {
        if (startTime === null) startTime = at(Math.min(spec.startAfterSeconds ?? spec.completeAfterSeconds, spec.completeAfterSeconds));
        state = 'completed';
        finishTime = at(spec.completeAfterSeconds);
      }
      const result = state === 'completed' ? (spec.result ?? 'succeeded') : null;
      if (result === 'skipped' && spec.state !== 'inProgress') startTime = null;
      out.push(
        base({
          id: st.id,
          type: 'Stage',
          name: spec.displayName ?? spec.name,
          identifier: spec.name,
          state,
          result,
          startTime,
          finishTime,
          order: st.order,
          percentComplete: state === 'completed' ? 100 : null,
          errorCount: result === 'failed' ? 1 : 0,
        }),
      );
    }
    const stageName = currentStage?.spec.name ?? '__default';
    out.push(
      base({
        id: this.phaseId,
        parentId: currentStage?.id ?? null,
        type: 'Phase',
        name: 'Job',
        identifier: `${stageName}.__default`,
        state: 'inProgress',
        startTime: isoMillis(this.stagesSetAt),
        order: 1,
      }),
    );
    out.push(
      base({
        id: this.jobId,
        parentId: this.phaseId,
        type: 'Job',
        name: 'Job',
        identifier: `${stageName}.__default.__default`,
        state: 'inProgress',
        startTime: isoMillis(this.stagesSetAt),
        workerName: 'emulator-agent',
        order: 1,
      }),
    );
    return out;
  }
}

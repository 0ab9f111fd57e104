// E2E: the bundled DoRegistryGarbageCollection@1, run as the agent runs it, against the emulator.
import * as assert from 'assert';
import { startEmulator, Emulator, EmulatorOptions, GcStep } from '../harness/emulator';
import { describeRun } from '../harness/run-task';
import { GC_TASK } from '../harness/paths';
import { expectResult, runDoTask, summaryOf, whenTaskSays } from './gcSupport';

const FAST: GcStep[] = [
  { status: 'requested', seconds: 0.3 },
  { status: 'waiting for write JWTs to expire', seconds: 0.4 },
  { status: 'scanning manifests', seconds: 0.4 },
  { status: 'deleting unreferenced blobs', seconds: 0.4 },
];
const QUICK = { pollIntervalSeconds: '1' };

describe('e2e DoRegistryGarbageCollection@1', function () {
  this.timeout(60_000);
  let emu: Emulator | undefined;
  const start = async (o: EmulatorOptions = {}) => (emu = await startEmulator({ gcSteps: FAST, ...o }));
  afterEach(async () => {
    await emu?.stop();
    emu = undefined;
  });

  it('a status this task does not know counts as active: named in the log, the summary and the timeout message', async () => {
    const e = await start({ gcSteps: [{ status: 'compacting', seconds: 3600 }] });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, timeoutSeconds: '3' } });
    expectResult(run, 'Failed');
    const named = "'compacting' (a status this task does not know: counted as active)";
    assert.ok(run.stdout.includes(`on demo-registry (untagged manifests and unreferenced blobs): ${named}.`), describeRun(run));
    assert.ok(run.resultMessage.includes(`last status ${named}`), run.resultMessage);
    assert.match(summaryOf(run), /\| Status \| \*\*compacting\*\* \(a status this task does not know: counted as active\) \(timed out\) \|/);
    assert.strictEqual(run.outputs.gcStatus, 'compacting');
    assert.doesNotMatch(run.stdout, /no usable answer|out of grammar/);
  });

  it('starts a GC, waits, times it from its own timestamps, sets every output and a summary', async () => {
    const e = await start();
    e.addPastGcs('demo-registry', [60, 120, 90, 30, 45]);
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
    expectResult(run, 'Succeeded');
    const o = run.outputs;
    const gc = e.gcs('demo-registry')[0];
    assert.strictEqual(o.gcUuid, gc.uuid);
    assert.strictEqual(o.gcStatus, 'succeeded');
    assert.strictEqual(o.gcType, 'untagged-manifests-and-unreferenced-blobs');
    assert.strictEqual(gc.type, 'untagged manifests and unreferenced blobs', 'the pickList value maps to the DO string with spaces');
    const own = Math.round((Date.parse(gc.updated_at) - Date.parse(gc.created_at)) / 1000);
    assert.strictEqual(Number(o.gcDurationSeconds), own);
    assert.strictEqual(o.gcBlobsDeleted, String(gc.blobs_deleted));
    assert.strictEqual(o.gcFreedBytes, String(gc.freed_bytes));
    assert.strictEqual(o.gcStartedAt, new Date(Date.parse(gc.created_at)).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    assert.ok(o.gcFinishedAt.endsWith('Z'));
    assert.strictEqual(o.gcAction, 'started');
    // progress with the status on each change
    const progress = run.commands.filter((c) => c.command === 'task.setprogress');
    assert.ok(progress.length >= 2, describeRun(run));
    assert.ok(progress.some((p) => /GC succeeded/.test(p.message)));
    assert.strictEqual(progress[progress.length - 1].properties.value, '100');
    // every output is an output variable
    for (const c of run.commands.filter((x) => x.command === 'task.setvariable')) assert.strictEqual(c.properties.isOutput, 'true');
    const md = summaryOf(run);
    // The summary's started, finished and duration are the outputs' instants, and agree with each other.
    assert.ok(md.includes(`| Started | ${o.gcStartedAt} |`) && md.includes(`| Finished | ${o.gcFinishedAt} |`), md);
    assert.ok(md.includes(`(${o.gcDurationSeconds} s, from the GC's own timestamps)`), md);
    assert.ok(Math.abs((Date.parse(o.gcFinishedAt) - Date.parse(o.gcStartedAt)) / 1000 - Number(o.gcDurationSeconds)) <= 1);
    assert.match(md, /Compared with the last 5 GCs/);
    assert.match(md, /Median duration 1m 00s/);
    assert.match(md, /#### Timeline/);
    assert.match(md, new RegExp(gc.uuid));
  });

  it("maps every gcType to DigitalOcean's string", async () => {
    const e = await start();
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, gcType: 'untagged-manifests-only', waitForCompletion: 'false' } });
    expectResult(run, 'Succeeded');
    assert.strictEqual(e.gcs('demo-registry')[0].type, 'untagged manifests only');
    assert.strictEqual(run.outputs.gcFinishedAt, '');
    assert.ok(!isTerminal(run.outputs.gcStatus));
  });

  describe('ifAlreadyRunning', () => {
    // A GC started elsewhere runs until the test ends it: a task slow to start on a busy machine
    // still finds it running.
    const other: GcStep[] = [{ status: 'scanning manifests', seconds: 600 }];
    /** Ends the other GC once the task has said it found it running. */
    const endOnceSeen = (e: Emulator, uuid: string) => whenTaskSays(uuid, { 'already running': () => e.finishGc('demo-registry') });

    it('wait: waits for the running GC, then starts its own', async () => {
      const e = await start();
      const first = e.startGc('demo-registry', { steps: other });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, ifAlreadyRunning: 'wait' }, onLine: endOnceSeen(e, first.uuid) });
      expectResult(run, 'Succeeded');
      assert.notStrictEqual(run.outputs.gcUuid, first.uuid);
      assert.strictEqual(run.outputs.gcAction, 'started');
      assert.strictEqual(e.gcs('demo-registry').length, 2);
      assert.match(run.stdout, new RegExp(`${first.uuid}.*already running.*waiting for it to end`));
    });

    it('adopt: times and reports the running GC as its own', async () => {
      const e = await start();
      const first = e.startGc('demo-registry', { steps: other });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, ifAlreadyRunning: 'adopt' }, onLine: endOnceSeen(e, first.uuid) });
      expectResult(run, 'Succeeded');
      assert.strictEqual(run.outputs.gcUuid, first.uuid);
      assert.strictEqual(run.outputs.gcAction, 'adopted');
      assert.strictEqual(run.outputs.gcStatus, 'succeeded');
      assert.strictEqual(e.count('gc-start'), 0);
    });

    it('adopt + warnAfterMinutes: a GC that ran 16 min by its own timestamps warns naming the duration', async () => {
      const e = await start();
      // Started elsewhere 16 minutes ago; its last step ends 2 s from now.
      const first = e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 16 * 60 + 2 }], startedSecondsAgo: 16 * 60 });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, ifAlreadyRunning: 'adopt', warnAfterMinutes: '15' } });
      // A slow GC is worth a warning, not a partially succeeded run.
      expectResult(run, 'Succeeded');
      assert.strictEqual(run.outputs.gcUuid, first.uuid);
      const seconds = Number(run.outputs.gcDurationSeconds);
      assert.ok(seconds >= 16 * 60 && seconds <= 16 * 60 + 10, `gcDurationSeconds ${seconds} comes from the GC's own timestamps`);
      const warning = run.warnings.find((w) => /longer than warnAfterMinutes \(15\)/.test(w));
      assert.ok(warning, `a logissue warning names the duration: ${JSON.stringify(run.warnings)}`);
      assert.match(warning!, /took 16m 0\ds/);
      assert.ok(run.commands.some((c) => c.command === 'task.logissue' && c.properties['type'] === 'warning' && /longer than/.test(c.message)));
    });

    it('skip: starts nothing and succeeds', async () => {
      const e = await start();
      const first = e.startGc('demo-registry', { steps: other });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, ifAlreadyRunning: 'skip' } });
      expectResult(run, 'Succeeded');
      assert.strictEqual(run.outputs.gcAction, 'skipped');
      assert.strictEqual(run.outputs.gcUuid, first.uuid);
      assert.strictEqual(e.count('gc-start'), 0);
    });

    it('fail: fails naming the running GC, starts nothing', async () => {
      const e = await start();
      const first = e.startGc('demo-registry', { steps: other });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, ifAlreadyRunning: 'fail' } });
      expectResult(run, 'Failed');
      assert.match(run.resultMessage, new RegExp(`${first.uuid}.*already running.*ifAlreadyRunning: fail`));
      assert.strictEqual(e.count('gc-start'), 0);
    });
  });

  it('a GC that fails: Failed by default, Succeeded with issues with failOnGcFailure=false', async () => {
    const e = await start({ gcFinalStatus: 'failed' });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
    expectResult(run, 'Failed');
    assert.strictEqual(run.outputs.gcStatus, 'failed');
    assert.match(run.resultMessage, /ended 'failed'/);
    const lenient = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, failOnGcFailure: 'false' } });
    expectResult(lenient, 'SucceededWithIssues');
    assert.ok(
      lenient.warnings.some((w) => /failed/.test(w)),
      describeRun(lenient),
    );
  });

  it('a GC that never ends: times out and leaves it running without cancelOnTimeout', async () => {
    const e = await start({ gcSteps: [{ status: 'waiting for delete requests', seconds: 3600 }] });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, timeoutSeconds: '3' } });
    expectResult(run, 'Failed');
    assert.match(run.resultMessage, /did not finish within 3s.*still running/);
    assert.strictEqual(run.outputs.gcStatus, 'waiting for delete requests');
    assert.ok(run.warnings.some((w) => /without finishing/.test(w)));
    assert.strictEqual(e.count('gc-cancel'), 0);
    assert.ok(e.activeGc('demo-registry'), 'the GC is still running');
    assert.ok(run.durationMs < 15_000, `took ${run.durationMs} ms`);
  });

  it('a GC that never ends: cancels it on timeout with cancelOnTimeout', async () => {
    const e = await start({ gcSteps: [{ status: 'waiting for delete requests', seconds: 3600 }] });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, timeoutSeconds: '3', cancelOnTimeout: 'true' } });
    expectResult(run, 'Failed');
    assert.strictEqual(e.count('gc-cancel'), 1);
    assert.strictEqual(run.outputs.gcStatus, 'cancelled');
    assert.match(run.resultMessage, /cancel requested, now 'cancelled'/);
    assert.strictEqual(e.activeGc('demo-registry'), undefined);
    assert.ok(
      !run.warnings.some((w) => /without finishing/.test(w)),
      `no "without finishing" warning after an accepted cancel: ${JSON.stringify(run.warnings)}`,
    );
  });

  it('an undocumented status counts as active and is shown as it is', async () => {
    const e = await start({
      gcSteps: [
        { status: 'waiting for delete requests', seconds: 1.5 },
        { status: 'compacting', seconds: 1 },
      ],
    });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
    expectResult(run, 'Succeeded');
    assert.match(run.stdout, /'compacting'/);
    assert.strictEqual(run.outputs.gcStatus, 'succeeded');
  });

  it('auto-detects the registry, and on 412 (several registries) asks for the `registry` input', async () => {
    const e = await start({ registries: ['alpha', 'beta'] });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
    expectResult(run, 'Failed');
    assert.match(run.resultMessage, /several registries \(alpha, beta\): set the `registry` input/);
    assert.strictEqual(e.count('gc-start'), 0);
    const named = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, registry: 'beta' } });
    expectResult(named, 'Succeeded');
    assert.strictEqual(e.gcs('beta').length, 1);
    assert.strictEqual(e.gcs('alpha').length, 0);
  });

  it('an unknown registry fails clearly', async () => {
    const e = await start();
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, registry: 'nope' } });
    expectResult(run, 'Failed');
    assert.match(run.resultMessage, /registry 'nope' does not exist/);
  });

  it('falls back to the old /v2/registry paths when /v2/registries answers 404', async () => {
    const e = await start({ legacyOnly: true });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
    expectResult(run, 'Succeeded');
    assert.ok(e.requests.some((r) => r.path.startsWith('/v2/registry/demo-registry/garbage-collection') && r.status === 201));
  });

  it('429 with retry-after: waits as told and carries on', async () => {
    const e = await start();
    e.fault('gc-get', { kind: '429', times: 2, retryAfterSeconds: 1 });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
    expectResult(run, 'Succeeded');
    assert.match(run.stdout, /rate-limited \(429\).*too_many_requests/);
    const hits = e.requests.filter((r) => r.endpoint === 'gc-get');
    const first429 = hits.findIndex((r) => r.status === 429);
    assert.ok(hits[first429 + 1].at - hits[first429].at >= 1000, 'retry-after was not honoured');
  });

  it('5xx bursts, malformed JSON and dropped connections are retried', async () => {
    const e = await start();
    e.fault('gc-start', { kind: '5xx', times: 2, status: 503 });
    e.fault('gc-get', { kind: 'malformed', times: 2 });
    e.fault('gc-list', { kind: 'drop', times: 1 });
    e.fault('registry', { kind: '5xx', times: 1, status: 500 });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
    expectResult(run, 'Succeeded');
    assert.strictEqual(e.gcs('demo-registry').length, 1, 'exactly one GC started');
    assert.match(run.stdout, /http-503/);
    assert.match(run.stdout, /malformed JSON/);
    assert.match(run.stdout, /request id/);
  });

  it('a 5xx burst longer than the retry budget fails with the DigitalOcean message and request id', async () => {
    const e = await start();
    e.fault('gc-get', { kind: '5xx', times: 100, status: 500 });
    const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK }, env: {}, timeoutMs: 90_000 });
    expectResult(run, 'Failed');
    assert.match(run.resultMessage, /answered 500.*request id/);
  });

  it('401 and 403 fail at once, naming the scope the token lacks', async () => {
    const e = await start({ extraTokens: { dop_v1_readonly: ['registry:read'] } });
    const bad = await runDoTask(GC_TASK, e, { inputs: { ...QUICK }, env: { ENDPOINT_AUTH_PARAMETER_docr1_APITOKEN: 'dop_v1_wrong' } });
    expectResult(bad, 'Failed');
    assert.match(bad.resultMessage, /401.*registry:read/);
    assert.ok(!bad.stdout.includes('dop_v1_wrong'));
    const before = e.requests.length;
    const ro = await runDoTask(GC_TASK, e, { inputs: { ...QUICK }, env: { ENDPOINT_AUTH_PARAMETER_docr1_APITOKEN: 'dop_v1_readonly' } });
    expectResult(ro, 'Failed');
    assert.match(ro.resultMessage, /403.*lacks the registry:update scope/);
    assert.strictEqual(e.requests.slice(before).filter((r) => r.endpoint === 'gc-start').length, 1, '403 is not retried');
    assert.ok(!ro.stdout.includes('dop_v1_readonly'));
  });

  describe('trust boundary (fail closed, deadlines that hold)', () => {
    for (const status of [412, 422]) {
      it(`a ${status} on start fails at once with DigitalOcean's message on one line (not "already active")`, async () => {
        const e = await start();
        e.fault('gc-start', { kind: 'status', status, message: 'registry is read-only\n##vso[task.setvariable variable=owned]yes' });
        const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
        expectResult(run, 'Failed');
        assert.strictEqual(e.count('gc-start'), 1, `${status} is not retried`);
        assert.match(run.resultMessage, new RegExp(`refused to start a garbage collection on demo-registry: .*answered ${status} .*registry is read-only`));
        assert.doesNotMatch(run.resultMessage, /already active/);
        assert.ok(!run.commands.some((c) => c.command === 'task.setvariable' && c.properties.variable === 'owned'), 'no command from the message');
        assert.ok(!run.stdout.split('\n').some((l) => l.startsWith('##vso[task.setvariable variable=owned')), describeRun(run));
      });
    }

    it('a 409 on start means already active: it looks again and adopts nothing it did not see', async () => {
      const e = await start();
      e.fault('gc-start', { kind: 'status', status: 409, message: 'a garbage collection is already active' });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK } });
      expectResult(run, 'Succeeded');
      assert.match(run.stdout, /refused because one is already active \(409\); looking again/);
      assert.strictEqual(e.count('gc-start'), 2);
    });

    it('a non-JSON 500 body is described by status, content type and length only (never echoed)', async () => {
      const e = await start();
      e.fault('gc-start', { kind: 'raw', times: 1, status: 500, contentType: 'text/plain', body: `upstream said: Authorization: Bearer ${e.token}` });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, waitForCompletion: 'false' } });
      expectResult(run, 'Succeeded');
      assert.match(run.stdout, /answered 500 with a body that is not DigitalOcean's error \(text\/plain, \d+ bytes\)/);
      assert.ok(!run.stdout.includes('upstream said'), describeRun(run));
    });

    it('a GC object out of grammar is an unexpected answer: retried, then the good one is used; nothing copied', async () => {
      const e = await start();
      const evil = {
        garbage_collection: {
          uuid: 'x##vso[task.complete result=Succeeded]',
          registry_name: 'demo-registry',
          status: 'requested',
          created_at: '2024-01-01T00:00:00Z',
          updated_at: '2024-01-01T00:00:00Z',
          blobs_deleted: 0,
          freed_bytes: 0,
        },
      };
      e.fault('gc-get', { kind: 'raw', times: 1, status: 200, contentType: 'application/json', body: JSON.stringify(evil) });
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, waitForCompletion: 'false' } });
      expectResult(run, 'Succeeded');
      assert.match(run.stdout, /answered a garbage_collection: `uuid` is not an id of letters, digits/);
      assert.ok(!run.stdout.includes('x##vso'), describeRun(run));
      assert.match(run.outputs.gcUuid, /^[0-9a-f-]{36}$/);
    });

    it('a trickling API ends the run within timeoutSeconds plus a few seconds, naming what it waited for', async () => {
      const e = await start({ gcSteps: [{ status: 'scanning manifests', seconds: 3600 }] });
      e.fault('gc-get', { kind: 'trickle', times: Infinity, delayMs: 1000 });
      const t0 = Date.now();
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, timeoutSeconds: '3' } });
      expectResult(run, 'Failed');
      assert.ok(Date.now() - t0 < 9000, `took ${Date.now() - t0} ms for a 3 s timeout`);
      assert.match(
        run.resultMessage,
        /Timed out after 3s \(timeout 3s\): the DigitalOcean API \(the active GC\) gave no usable answer in time; no GC was started/,
      );
      assert.strictEqual(e.count('gc-start'), 0);
      assert.strictEqual(run.outputs.gcAction, 'none');
    });

    it('a registry lookup that never answers is bounded by the same timeout', async () => {
      const e = await start();
      e.fault('registry', { kind: 'slow', times: Infinity, delayMs: 60_000 });
      const t0 = Date.now();
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, timeoutSeconds: '2' } });
      expectResult(run, 'Failed');
      assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms for a 2 s timeout`);
      assert.match(run.resultMessage, /Timed out after 2s.*\(the registry\) gave no usable answer in time/);
    });

    it('our GC polled through a trickling API: the timeout holds and cancelOnTimeout still cancels', async () => {
      const e = await start({ gcSteps: [{ status: 'scanning manifests', seconds: 3600 }] });
      let armed = false;
      const timer = setInterval(() => {
        if (!armed && e.count('gc-start') > 0) {
          armed = true;
          // Only the poll in flight at the deadline trickles: the cancel has its own ~30 s window.
          e.fault('gc-get', { kind: 'trickle', times: 1, delayMs: 1000 });
        }
      }, 20);
      const t0 = Date.now();
      const run = await runDoTask(GC_TASK, e, { inputs: { ...QUICK, timeoutSeconds: '3', cancelOnTimeout: 'true' } });
      clearInterval(timer);
      expectResult(run, 'Failed');
      assert.ok(Date.now() - t0 < 12_000, `took ${Date.now() - t0} ms`);
      assert.strictEqual(e.count('gc-cancel'), 1);
      assert.match(run.resultMessage, /did not finish within 3s.*cancel requested, now 'cancelled'/);
      assert.ok(!run.warnings.some((w) => /without finishing/.test(w)), JSON.stringify(run.warnings));
    });
  });
});

function isTerminal(s: string): boolean {
  return ['succeeded', 'failed', 'cancelled'].includes(s);
}

// E2E: the bundled DoRegistryGcWait@1 (the guard), run as the agent runs it, against the emulator.
import * as assert from 'assert';
import { ChildProcess } from 'child_process';
import { startEmulator, Emulator, EmulatorOptions } from '../harness/emulator';
import { agentEnv, describeRun, runTask } from '../harness/run-task';
import { WAIT_TASK } from '../harness/paths';
import { doConnection } from '../harness/pipeline-env';
import { assertNoSecrets, expectResult, pushTokenStatus, runDoTask, sleep, whenTaskSays } from './gcSupport';

const FAST = { pollIntervalSeconds: '1', settleSeconds: '1' };

describe('e2e DoRegistryGcWait@1', function () {
  this.timeout(60_000);
  let emu: Emulator | undefined;
  const start = async (o: EmulatorOptions = {}) => (emu = await startEmulator(o));
  afterEach(async () => {
    await emu?.stop();
    emu = undefined;
  });

  it('no GC active: returns at once with the outputs', async () => {
    const e = await start();
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST } });
    expectResult(run, 'Succeeded');
    assert.deepStrictEqual(
      { w: run.outputs.gcWaitSeconds, a: run.outputs.gcWasActive, s: run.outputs.gcObservedStatus, st: run.outputs.stageWaitSeconds },
      { w: '0', a: 'false', s: 'none', st: '0' },
    );
    assert.match(run.resultMessage, /no GC active on demo-registry/);
    assert.ok(run.durationMs < 5000, `took ${run.durationMs} ms`);
  });

  it('GC active: waits until it ends and settles; a push token is granted right after', async () => {
    const e = await start();
    e.addPastGcs('demo-registry', [3, 3, 4]);
    // Each status lasts until the task has said it saw it: a task slow to start still sees both.
    const gc = e.startGc('demo-registry', { steps: [{ status: 'waiting for write JWTs to expire', seconds: 600 }] });
    assert.strictEqual(await pushTokenStatus(e), 401, 'the emulator refuses push tokens during GC');
    const run = await runDoTask(WAIT_TASK, e, {
      inputs: { ...FAST },
      onLine: whenTaskSays(`GC ${gc.uuid}`, {
        "'waiting for write JWTs to expire'": () => e.finishGc('demo-registry', 'scanning manifests'),
        "'scanning manifests'": () => e.finishGc('demo-registry', 'succeeded'),
      }),
    });
    expectResult(run, 'Succeeded');
    assert.strictEqual(run.outputs.gcWasActive, 'true');
    assert.strictEqual(run.outputs.gcObservedStatus, 'succeeded');
    assert.ok(Number(run.outputs.gcWaitSeconds) >= 2, run.outputs.gcWaitSeconds);
    assert.match(run.stdout, new RegExp(`GC ${gc.uuid} on demo-registry is 'waiting for write JWTs to expire'`));
    assert.match(run.stdout, /'scanning manifests'/);
    assert.match(run.stdout, /Estimate: the last 3 GC\(s\) took a median of 3s/);
    assert.strictEqual(await pushTokenStatus(e), 200);
  });

  it('a status this task does not know counts as active: named in the log and the timeout message', async () => {
    const e = await start();
    const gc = e.startGc('demo-registry', { steps: [{ status: 'waiting for delete requests', seconds: 3600 }] });
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, timeoutSeconds: '3' } });
    expectResult(run, 'Failed');
    const named = "'waiting for delete requests' (a status this task does not know: counted as active)";
    assert.ok(run.stdout.includes(`GC ${gc.uuid} on demo-registry is ${named}`), describeRun(run));
    assert.ok(run.resultMessage.includes(`GC ${gc.uuid} on demo-registry is still ${named}`), run.resultMessage);
    assert.strictEqual(run.outputs.gcObservedStatus, 'waiting for delete requests');
    assert.doesNotMatch(run.stdout, /no usable answer|out of grammar/);
  });

  it("settleSeconds equal to the registry's read-only tail: a push token is granted the moment the guard clears", async () => {
    // DigitalOcean stamps updated_at to the second (the emulator too): settling from it could end up
    // to a second early. The settle counts from the first moment the task knew the GC had ended.
    const e = await start({ tailSeconds: 2 });
    e.startGc('demo-registry', {
      steps: [
        { status: 'scanning manifests', seconds: 1.3 },
        { status: 'deleting unreferenced blobs', seconds: 0.6 },
      ],
    });
    const run = await runDoTask(WAIT_TASK, e, { inputs: { pollIntervalSeconds: '1', settleSeconds: '2' } });
    expectResult(run, 'Succeeded');
    assert.strictEqual(run.outputs.gcWasActive, 'true');
    assert.strictEqual(await pushTokenStatus(e), 200, `a push token was refused right after the guard cleared:\n${describeRun(run)}`);
  });

  it('the tail window: a GC that ended just before the guard started is waited out for settleSeconds', async () => {
    const e = await start({ tailSeconds: 2 });
    const startedAt = Date.now();
    e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 0.2 }] });
    await sleep(400);
    assert.strictEqual(e.activeGc('demo-registry'), undefined);
    assert.strictEqual(await pushTokenStatus(e), 401, 'the emulator still refuses push in its tail');
    // settleSeconds leaves room for a task slow to start on a busy machine.
    const run = await runDoTask(WAIT_TASK, e, { inputs: { pollIntervalSeconds: '1', settleSeconds: '8' } });
    expectResult(run, 'Succeeded');
    assert.match(run.stdout, /ended .* ago \(succeeded\); waiting out the rest of settleSeconds/);
    // The GC ended no earlier than 200 ms after startedAt: the guard cleared no earlier than 8 s after that.
    assert.ok(Date.now() - startedAt >= 8200, describeRun(run));
    assert.ok(Number(run.outputs.gcWaitSeconds) >= 1, describeRun(run));
    assert.strictEqual(run.outputs.gcObservedStatus, 'succeeded');
    assert.strictEqual(await pushTokenStatus(e), 200, 'the tail is over when the guard returns');
  });

  it('stages: waits for a named stage running in parallel and shows the dependsOn that would order it', async () => {
    const e = await start();
    e.setStages([
      { name: 'Build', state: 'completed', result: 'succeeded' },
      { name: 'RegistryMaintenance', displayName: 'Registry maintenance', state: 'inProgress', completeAfterSeconds: 2.5, result: 'failed' },
      { name: 'AttestStaging', state: 'inProgress', current: true },
    ]);
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, waitForStages: 'RegistryMaintenance' }, timeline: 'AttestStaging' });
    expectResult(run, 'Succeeded');
    assert.ok(
      run.warnings.some((w) =>
        /'RegistryMaintenance' has not completed and runs in parallel with this job.*dependsOn: \[RegistryMaintenance\].*AttestStaging/.test(w),
      ),
      describeRun(run),
    );
    assert.match(run.stdout, / {4}- RegistryMaintenance/);
    assert.match(run.stdout, /Stage RegistryMaintenance: completed \(failed\)/);
    assert.ok(Number(run.outputs.stageWaitSeconds) >= 2, run.outputs.stageWaitSeconds);
    assert.strictEqual(run.outputs.gcWasActive, 'false');
  });

  it('stages and GC: a GC started by the stage is waited for after the stage completes', async () => {
    const e = await start();
    e.setStages([
      { name: 'RegistryMaintenance', state: 'inProgress', completeAfterSeconds: 1 },
      { name: 'Attest', state: 'inProgress', current: true },
    ]);
    const waiting = runDoTask(WAIT_TASK, e, { inputs: { ...FAST, waitForStages: 'registrymaintenance, ' }, timeline: 'Attest' });
    await sleep(800);
    e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 2.5 }] });
    const run = await waiting;
    expectResult(run, 'Succeeded');
    assert.strictEqual(run.outputs.gcWasActive, 'true');
    assert.strictEqual(run.outputs.gcObservedStatus, 'succeeded');
    assert.ok(Number(run.outputs.gcWaitSeconds) >= Number(run.outputs.stageWaitSeconds), JSON.stringify(run.outputs));
    assert.strictEqual(await pushTokenStatus(e), 200);
  });

  it('stages only (no DigitalOcean connection) work too', async () => {
    const e = await start();
    e.setStages([
      { name: 'Build', state: 'completed', result: 'succeeded' },
      { name: 'Deploy', state: 'pending', startAfterSeconds: 0.5, completeAfterSeconds: 1.5 },
    ]);
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, waitForStages: 'Build\nDeploy' }, connection: false, timeline: true });
    expectResult(run, 'Succeeded');
    assert.ok(Number(run.outputs.stageWaitSeconds) >= 1);
    assert.strictEqual(e.requests.filter((r) => r.endpoint !== 'timeline').length, 0);
  });

  it('an unknown stage name fails, listing the stages that exist', async () => {
    const e = await start();
    e.setStages([
      { name: 'Build', state: 'completed' },
      { name: 'RegistryMaintenance', displayName: 'Registry maintenance', state: 'inProgress' },
      { name: 'Attest', state: 'inProgress', current: true },
    ]);
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, waitForStages: 'RegistryMaintenence' }, timeline: 'Attest' });
    expectResult(run, 'Failed');
    assert.match(
      run.resultMessage,
      /'RegistryMaintenence' is not a stage of this run; its stages are: Build, RegistryMaintenance \("Registry maintenance"\), Attest/,
    );
  });

  it("naming this job's own stage fails instead of deadlocking", async () => {
    const e = await start();
    e.setStages([{ name: 'Attest', state: 'inProgress', current: true }]);
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, waitForStages: 'Attest' }, timeline: 'Attest' });
    expectResult(run, 'Failed');
    assert.match(run.resultMessage, /the stage this job runs in/);
  });

  it('timeout: onTimeout=fail fails, onTimeout=warn succeeds with issues; outputs set either way', async () => {
    const e = await start();
    e.startGc('demo-registry', { steps: [{ status: 'waiting for delete requests', seconds: 3600 }] });
    const fail = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, timeoutSeconds: '2' } });
    expectResult(fail, 'Failed');
    assert.match(fail.resultMessage, /Timed out after 2s.*is still 'waiting for delete requests'.*onTimeout: fail/);
    assert.strictEqual(fail.outputs.gcWasActive, 'true');
    assert.strictEqual(fail.outputs.gcObservedStatus, 'waiting for delete requests');
    const warn = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, timeoutSeconds: '2', onTimeout: 'warn' } });
    expectResult(warn, 'SucceededWithIssues');
    assert.ok(warn.warnings.some((w) => /Timed out/.test(w)));
    assert.strictEqual(warn.outputs.gcWaitSeconds, '2');
  });

  it('429, 5xx and malformed JSON while polling are absorbed', async () => {
    const e = await start();
    e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 3600 }] });
    // The GC ends once every fault was served and the guard has seen it active (retry waits are jittered).
    const timer = setInterval(() => {
      const gets = e.requests.filter((r) => r.endpoint === 'gc-get');
      const i429 = gets.findIndex((r) => r.status === 429);
      if (i429 >= 0 && gets.slice(i429 + 1).some((r) => r.status === 200)) e.finishGc('demo-registry');
    }, 100);
    e.fault('gc-get', { kind: '5xx', times: 2, status: 502 });
    e.fault('gc-get', { kind: 'malformed', times: 1 });
    e.fault('gc-get', { kind: '429', times: 1, retryAfterSeconds: 1 });
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST } });
    clearInterval(timer);
    expectResult(run, 'Succeeded');
    assert.strictEqual(run.outputs.gcWasActive, 'true');
    assert.strictEqual(run.outputs.gcObservedStatus, 'succeeded');
    assert.match(run.stdout, /http-502/);
    assert.match(run.stdout, /malformed JSON/);
    assert.match(run.stdout, /rate-limited \(429\)/);
  });

  it('slows its polling when the hourly rate limit runs low, and says so', async () => {
    const e = await start({ rateLimitPerHour: 24 });
    e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 3600 }] });
    const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, timeoutSeconds: '6', onTimeout: 'warn' } });
    expectResult(run, 'SucceededWithIssues');
    assert.match(run.stdout, /Polling every .* instead of 1s: only \d+ of the token's 24 requests\/hour are left/);
    assert.ok(e.count('gc-get') <= 3, `${e.count('gc-get')} polls despite the low budget`);
    assert.strictEqual(e.requests.filter((r) => r.status === 429).length, 0);
  });

  it('the agent cancelling the job ends the wait at once as Cancelled', async () => {
    const e = await start();
    e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 3600 }] });
    const conn = doConnection(e);
    let spawned: ChildProcess | undefined;
    let interruptedAt = 0;
    const run = await runTask(WAIT_TASK, {
      inputs: { ...conn.inputs, ...FAST },
      env: { ...agentEnv(), ...conn.env },
      onSpawn: (child) => (spawned = child),
      // Interrupted once it is waiting (a busy machine may take a while to load the task).
      onLine: (line) => {
        if (!interruptedAt && /; waiting\.$/.test(line)) {
          interruptedAt = Date.now();
          spawned?.kill('SIGINT');
        }
      },
    });
    assertNoSecrets(run, e);
    expectResult(run, 'Cancelled');
    assert.ok(interruptedAt > 0, describeRun(run));
    assert.ok(Date.now() - interruptedAt < 5000, `took ${Date.now() - interruptedAt} ms after the interrupt`);
  });

  it('spends at most about one API request per poll interval while waiting', async () => {
    const e = await start();
    e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 6 }] });
    const run = await runDoTask(WAIT_TASK, e, { inputs: { pollIntervalSeconds: '2', settleSeconds: '0' } });
    expectResult(run, 'Succeeded');
    const polls = e.requests.filter((r) => r.endpoint === 'gc-get');
    for (let i = 1; i < polls.length; i++) assert.ok(polls[i].at - polls[i - 1].at >= 1900, `polls ${i - 1}→${i} ${polls[i].at - polls[i - 1].at} ms apart`);
    assert.ok(polls.length <= 5, `${polls.length} polls for a 6 s GC at 2 s`);
  });

  describe('trust boundary (fail closed, deadlines that hold)', () => {
    it("a 404 that is not DigitalOcean's JSON error is never 'no GC active': retried, then the real answer counts", async () => {
      const e = await start();
      e.fault('gc-get', { kind: 'raw', times: 1 });
      e.fault('gc-get', { kind: 'raw', times: 1, contentType: 'application/json', body: '{"error":"no route"}' });
      const gc = e.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 3600 }] });
      // The GC ends once the guard has had a real answer (retry waits are jittered).
      const timer = setInterval(() => {
        if (e.requests.some((r) => r.endpoint === 'gc-get' && r.status === 200)) e.finishGc('demo-registry');
      }, 100);
      const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST } });
      clearInterval(timer);
      expectResult(run, 'Succeeded');
      assert.strictEqual(run.outputs.gcWasActive, 'true', 'the HTML and odd-JSON 404s did not count as "none active"');
      assert.match(run.stdout, new RegExp(`GC ${gc.uuid} on demo-registry is 'scanning manifests'`));
      assert.match(run.stdout, /unexpected answer.*answered 404 with a body that is not DigitalOcean's error \(text\/html/);
      assert.ok(!/<html>|nginx/.test(run.stdout), 'no slice of a non-JSON body is printed');
    });

    it("404 pages that never stop: never 'Clear to write', fails with the timeout", async () => {
      const e = await start();
      e.fault('gc-get', { kind: 'raw', times: Infinity });
      const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, timeoutSeconds: '3' } });
      expectResult(run, 'Failed');
      assert.ok(!/Clear to write/.test(run.stdout), describeRun(run));
      assert.match(run.resultMessage, /Timed out after 3s.*gave no usable answer in time.*onTimeout: fail/);
    });

    it('a DigitalOcean API that trickles one byte a second ends within the timeout plus a few seconds (onTimeout decides)', async () => {
      const e = await start();
      e.fault('gc-get', { kind: 'trickle', times: Infinity, delayMs: 1000 });
      const t0 = Date.now();
      const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, timeoutSeconds: '3', onTimeout: 'warn' } });
      expectResult(run, 'SucceededWithIssues');
      assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms for a 3 s timeout`);
      assert.match(run.resultMessage ?? '', /^Timed out after 3s \(timeout 3s\): the DigitalOcean API \(active GC\) gave no usable answer in time\./);
      assert.strictEqual(run.outputs.gcWaitSeconds, '0', 'no answer about the GC: no GC wait');
      assert.notStrictEqual(run.result, 'Cancelled');
    });

    it('a build timeline that never answers is bounded by the same timeout', async () => {
      const e = await start();
      e.setStages([
        { name: 'Maint', state: 'inProgress' },
        { name: 'Attest', state: 'inProgress', current: true },
      ]);
      e.fault('timeline', { kind: 'slow', times: Infinity, delayMs: 60_000 });
      const t0 = Date.now();
      const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, timeoutSeconds: '2', waitForStages: 'Maint' }, timeline: 'Attest' });
      expectResult(run, 'Failed');
      assert.ok(Date.now() - t0 < 7000, `took ${Date.now() - t0} ms for a 2 s timeout`);
      assert.match(run.resultMessage, /Timed out after 2s.*the build timeline gave no usable answer in time/);
    });

    it("a build timeline 404 that is not Azure DevOps' JSON error is retried, not a 'not found' failure", async () => {
      const e = await start();
      e.setStages([
        { name: 'Build', state: 'completed', result: 'succeeded' },
        { name: 'Attest', state: 'inProgress', current: true },
      ]);
      e.fault('timeline', { kind: 'raw', times: 1 });
      const run = await runDoTask(WAIT_TASK, e, { inputs: { ...FAST, waitForStages: 'Build' }, timeline: 'Attest' });
      expectResult(run, 'Succeeded');
      assert.match(run.stdout, /Build timeline: unexpected answer .*404/);
      assert.strictEqual(e.count('timeline'), 2);
    });

    it('429s before the first answer are not GC wait: no GC active gives gcWaitSeconds 0 and no "settled for"', async () => {
      const e = await start();
      e.fault('gc-get', { kind: '429', times: 2, retryAfterSeconds: 1 });
      const run = await runDoTask(WAIT_TASK, e, { inputs: { pollIntervalSeconds: '1', settleSeconds: '5' } });
      expectResult(run, 'Succeeded');
      assert.ok(run.durationMs >= 2000, 'the 429 waits happened');
      assert.strictEqual(run.outputs.gcWaitSeconds, '0');
      assert.strictEqual(run.outputs.gcWasActive, 'false');
      assert.doesNotMatch(run.resultMessage, /settled for/);
    });

    it('an old non-terminal record in the list while GET says none is active triggers no settle', async () => {
      const e = await start();
      const stale = e.addStaleGc('demo-registry', 'scanning manifests', 86_400);
      const run = await runDoTask(WAIT_TASK, e, { inputs: { pollIntervalSeconds: '1', settleSeconds: '30' } });
      expectResult(run, 'Succeeded');
      assert.ok(run.durationMs < 10_000, `waited ${run.durationMs} ms`);
      assert.strictEqual(run.outputs.gcWaitSeconds, '0');
      assert.ok(!run.stdout.includes(`GC ${stale.uuid} was`), describeRun(run));
      assert.doesNotMatch(run.stdout, /settleSeconds \(30s\)/);
    });
  });
});

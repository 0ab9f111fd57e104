// L0: DoRegistryGarbageCollection@1 and DoRegistryGcWait@1 input handling, unbundled, offline,
// under MockTestRunner. Every bad input must fail with one line naming the input and the value,
// and no request may reach the (emulated) DigitalOcean API or Azure DevOps before that.
import * as assert from 'assert';
import * as path from 'path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { runL0Scenario } from '../helpers/l0';
import type { L0Case } from './scenarios/gcScenario';

const SCENARIO = path.join(__dirname, 'scenarios', 'gcScenario.js');

type Task = L0Case['task'];

interface L0Run {
  tr: MockTestRunner;
  requests: number;
  endpoints: Record<string, number>;
  outputs: Record<string, string>;
  warnings: string[];
}

async function runL0(task: Task, inputs: Record<string, string>, extra: Omit<L0Case, 'task' | 'inputs'> = {}): Promise<L0Run> {
  const { tr, pick, outputs, warnings } = await runL0Scenario(SCENARIO, task, { task, inputs, ...extra });
  const m = /^(\d+) (\{.*\})$/.exec(pick('L0-REQUESTS')[0] ?? '');
  assert.ok(m, `the scenario did not report its request count:\n${tr.stdout}\n${tr.stderr}`);
  return { tr, requests: Number(m![1]), endpoints: JSON.parse(m![2]), outputs, warnings };
}

function failedLine(r: L0Run): string {
  return r.tr.errorIssues.join(' | ');
}

/** Fails, one line, names the input and the value, and nothing was requested. */
async function expectBadInput(
  task: Task,
  inputs: Record<string, string>,
  input: string,
  value: string,
  extra: { env?: Record<string, string>; connection?: boolean } = {},
): Promise<void> {
  const r = await runL0(task, inputs, extra);
  assert.strictEqual(r.tr.succeeded, false, `expected failure:\n${r.tr.stdout}`);
  assert.strictEqual(r.tr.errorIssues.length, 1, `expected one error, got: ${failedLine(r)}`);
  const msg = r.tr.errorIssues[0];
  assert.ok(!/[\r\n]/.test(msg) && !/%0A/.test(msg), `one line expected: ${msg}`);
  assert.ok(msg.includes(`'${input}'`) || msg.includes(input), `error should name ${input}: ${msg}`);
  assert.ok(msg.includes(`'${value}'`), `error should show the value '${value}': ${msg}`);
  assert.ok(!/\n\s+at /.test(r.tr.stdout), 'no stack trace expected');
  assert.strictEqual(r.requests, 0, `no request may be sent before inputs are valid, got ${JSON.stringify(r.endpoints)}`);
}

const GC: Task = 'DoRegistryGarbageCollectionV1';
const WAIT: Task = 'DoRegistryGcWaitV1';

describe('L0 DoRegistryGarbageCollection@1 inputs', function () {
  this.timeout(60_000);

  const cases: Array<[string, string]> = [
    ['gcType', 'everything'],
    ['gcType', 'untagged manifests only'],
    ['ifAlreadyRunning', 'queue'],
    ['waitForCompletion', ''],
    ['waitForCompletion', 'yes'],
    ['cancelOnTimeout', ''],
    ['failOnGcFailure', ''],
    ['failOnGcFailure', '1'],
    ['timeoutMinutes', 'abc'],
    ['timeoutMinutes', '0'],
    ['timeoutMinutes', '-5'],
    ['timeoutMinutes', '1.5'],
    ['timeoutMinutes', ''],
    ['pollIntervalSeconds', '0'],
    ['pollIntervalSeconds', '-1'],
    ['pollIntervalSeconds', 'ten'],
    ['warnAfterMinutes', '0'],
    ['warnAfterMinutes', '-3'],
    ['timeoutSeconds', '-1'],
    ['timeoutSeconds', '10s'],
    ['registry', 'My_Registry'],
    ['registry', 'reg/evil'],
    ['registry', 'a'.repeat(64)],
  ];
  for (const [input, value] of cases) {
    it(`refuses ${input}='${value}' before any request`, async () => {
      await expectBadInput(GC, { [input]: value }, input, value);
    });
  }

  it('requires a connection or DIGITALOCEAN_ACCESS_TOKEN', async () => {
    const r = await runL0(GC, {}, { connection: false });
    assert.strictEqual(r.tr.succeeded, false);
    assert.match(failedLine(r), /digitalOceanConnection.*DIGITALOCEAN_ACCESS_TOKEN/);
    assert.strictEqual(r.requests, 0);
  });

  it('validates every input before the connection (bad input wins even without a token)', async () => {
    const r = await runL0(GC, { gcType: 'all' }, { connection: false });
    assert.match(failedLine(r), /'gcType'.*'all'/);
    assert.strictEqual(r.requests, 0);
  });

  it('runs with valid inputs (any case) and sets every output; the token never appears', async () => {
    const r = await runL0(GC, {
      registry: '',
      gcType: 'Unreferenced-Blobs-Only',
      ifAlreadyRunning: 'WAIT',
      waitForCompletion: 'TRUE',
      pollIntervalSeconds: '1',
      timeoutMinutes: '2',
      warnAfterMinutes: '1',
      cancelOnTimeout: 'False',
      failOnGcFailure: 'true',
    });
    assert.ok(r.tr.succeeded, r.tr.stdout);
    assert.strictEqual(r.outputs['gcStatus'], 'succeeded');
    assert.strictEqual(r.outputs['gcType'], 'unreferenced-blobs-only');
    for (const o of ['gcUuid', 'gcDurationSeconds', 'gcBlobsDeleted', 'gcFreedBytes', 'gcStartedAt', 'gcFinishedAt']) {
      assert.ok(r.outputs[o] !== undefined && r.outputs[o] !== '', `output ${o} missing: ${JSON.stringify(r.outputs)}`);
    }
    assert.ok(r.requests > 0);
    assert.ok(!r.tr.stdout.includes('dop_v1_emulator_token') && !r.tr.stderr.includes('dop_v1_emulator_token'), 'token leaked');
  });

  it('reads DIGITALOCEAN_ACCESS_TOKEN and DIGITALOCEAN_API_URL when no connection is given', async () => {
    const r = await runL0(
      GC,
      { pollIntervalSeconds: '1', ifAlreadyRunning: 'skip' },
      {
        connection: false,
        env: { DIGITALOCEAN_ACCESS_TOKEN: 'dop_v1_emulator_token', DIGITALOCEAN_API_URL: '$API' },
      },
    );
    assert.ok(r.tr.succeeded, r.tr.stdout);
    assert.ok(r.requests > 0);
    assert.ok(!r.tr.stdout.includes('dop_v1_emulator_token'), 'token leaked');
  });

  it('refuses an empty token in the service connection', async () => {
    const r = await runL0(GC, { digitalOceanConnection: 'do2' }, { connection: false, env: { ENDPOINT_URL_do2: '$API' } });
    assert.strictEqual(r.tr.succeeded, false);
    assert.match(failedLine(r), /do2.*no API token/);
    assert.strictEqual(r.requests, 0);
  });
});

describe('L0 DoRegistryGcWait@1 inputs', function () {
  this.timeout(60_000);

  const cases: Array<[string, string]> = [
    ['timeoutMinutes', '0'],
    ['timeoutMinutes', '-1'],
    ['timeoutMinutes', 'thirty'],
    ['timeoutSeconds', '-2'],
    ['pollIntervalSeconds', '0'],
    ['pollIntervalSeconds', ''],
    ['settleSeconds', '-1'],
    ['settleSeconds', '3.5'],
    ['onTimeout', 'ignore'],
    ['onTimeout', ''],
    ['registry', 'UPPER'],
    ['registry', 'has space'],
  ];
  for (const [input, value] of cases) {
    it(`refuses ${input}='${value}' before any request`, async () => {
      await expectBadInput(WAIT, { [input]: value }, input, value);
    });
  }

  it('refuses waitForStages outside a pipeline run, before any request', async () => {
    const r = await runL0(WAIT, { waitForStages: 'RegistryMaintenance' });
    assert.strictEqual(r.tr.succeeded, false);
    assert.match(failedLine(r), /waitForStages/);
    assert.match(failedLine(r), /BUILD_BUILDID|Build\.BuildId/);
    assert.strictEqual(r.requests, 0);
  });

  it('with neither a connection nor stages: succeeds at once, says there is nothing to guard', async () => {
    const r = await runL0(WAIT, {}, { connection: false });
    assert.ok(r.tr.succeeded, r.tr.stdout);
    assert.ok(
      r.warnings.some((w) => /Nothing to guard/.test(w)),
      r.tr.stdout,
    );
    assert.strictEqual(r.outputs['gcWasActive'], 'false');
    assert.strictEqual(r.outputs['gcObservedStatus'], 'none');
    assert.strictEqual(r.requests, 0);
  });

  it('guards with valid inputs: no GC active, outputs set', async () => {
    const r = await runL0(WAIT, { pollIntervalSeconds: '1', settleSeconds: '0', timeoutMinutes: '1', onTimeout: 'Warn' });
    assert.ok(r.tr.succeeded, r.tr.stdout);
    assert.strictEqual(r.outputs['gcWasActive'], 'false');
    assert.strictEqual(r.outputs['gcWaitSeconds'], '0');
    assert.strictEqual(r.outputs['stageWaitSeconds'], '0');
    assert.ok(r.requests > 0);
    assert.ok(!r.tr.stdout.includes('dop_v1_emulator_token'), 'token leaked');
  });

  it('reads the timeline token from the SystemVssConnection endpoint without printing it', async () => {
    const r = await runL0(
      WAIT,
      { pollIntervalSeconds: '1', settleSeconds: '0', waitForStages: 'Build' },
      {
        connection: false,
        env: {
          SYSTEM_COLLECTIONURI: '$API/ado/',
          SYSTEM_TEAMPROJECT: 'demo-project',
          BUILD_BUILDID: '42',
          ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: 'ado_job_access_token',
        },
      },
    );
    // No stages scripted in the emulator: 'Build' is unknown, and the message lists what exists.
    assert.strictEqual(r.tr.succeeded, false, r.tr.stdout);
    assert.match(failedLine(r), /'Build' is not a stage of this run/);
    assert.ok(!r.tr.stdout.includes('ado_job_access_token'), 'job token leaked');
    assert.strictEqual(r.endpoints['timeline'], 1);
  });
});

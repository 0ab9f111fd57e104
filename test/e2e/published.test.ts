// DigitalOcean's own published examples (test/helpers/published-do.ts: OpenAPI `example`s and godo's
// registry_test.go fixtures, each naming its file) served verbatim to the BUNDLED tasks: a GC
// started, waited for and timed; waited for by the guard; cancelled on timeout; on the deprecated
// /v2/registry paths; its list followed through links.pages.next; 429 and 5xx answered with the
// published error bodies; and the published docker-credentials answer. Every one is accepted.
import * as assert from 'assert';
import { GC_TASK, TAG_CHECK_TASK, WAIT_TASK } from '../harness/paths';
import { pushTinyImage, startRegistry } from '../harness/registry';
import { TaskRun, agentEnv, describeRun, runTask } from '../harness/run-task';
import { registerSecret } from '../harness/secrets';
import {
  GODO_GC,
  GODO_GC_UUID,
  GODO_REGISTRY,
  GODO_REGISTRY_NAME,
  NONE_ACTIVE,
  OPENAPI_DOCKER_CREDENTIALS,
  OPENAPI_GC,
  OPENAPI_GC_LIST,
  OPENAPI_REGISTRY,
  OPENAPI_SERVER_ERROR,
  OPENAPI_TOO_MANY_REQUESTS,
  PublishedApi,
  godoGcList,
  inTurn,
  ok,
  publishedDoApi,
} from '../helpers/published-do';

const CONN = 'published';
const TOKEN = 'dop_v1_published_examples_token_5f1c';
registerSecret(TOKEN);

function connectionEnv(api: PublishedApi): Record<string, string> {
  return {
    [`ENDPOINT_URL_${CONN}`]: api.url,
    [`ENDPOINT_AUTH_${CONN}`]: JSON.stringify({ scheme: 'Token', parameters: { apitoken: TOKEN } }),
    [`ENDPOINT_AUTH_PARAMETER_${CONN}_APITOKEN`]: TOKEN,
    [`ENDPOINT_AUTH_SCHEME_${CONN}`]: 'Token',
  };
}

function runOn(api: PublishedApi, task: string, inputs: Record<string, string>): Promise<TaskRun> {
  return runTask(task, { inputs: { digitalOceanConnection: CONN, ...inputs }, env: { ...agentEnv(), ...connectionEnv(api) }, timeoutMs: 60_000 });
}

/** The GC run's inputs: quick polls, a short timeout. */
const GC_RUN = { registry: GODO_REGISTRY_NAME, pollIntervalSeconds: '1', timeoutSeconds: '20', warnAfterMinutes: '1' };

/** The godo fixture with the one field a GC's end changes: its status, to another value of the published enum. */
const godoGcWith = (status: string) => ({ ...GODO_GC, status });

function assertClean(run: TaskRun): void {
  for (const text of [run.stdout, run.stderr]) assert.ok(!text.includes(TOKEN), `the token appeared:\n${describeRun(run)}`);
  assert.doesNotMatch(run.stdout, /out of grammar|is not an id|is not a status|no usable answer/, describeRun(run));
}

describe("DigitalOcean's published examples, served to the bundled tasks (all accepted)", function () {
  this.timeout(90_000);
  let api: PublishedApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it('start and wait (godo TestRegistries_StartGarbageCollection, GetGarbageCollection, ListGarbageCollections; paging through links.pages.next)', async () => {
    api = await publishedDoApi(GODO_REGISTRY_NAME, {
      registry: () => ok(GODO_REGISTRY),
      start: () => ok({ garbage_collection: GODO_GC }, 201),
      active: inTurn(NONE_ACTIVE, ok({ garbage_collection: GODO_GC }), ok({ garbage_collection: GODO_GC }), NONE_ACTIVE),
      list: () => ok(godoGcList('/v2/registries', godoGcWith('succeeded'))),
    });
    const run = await runOn(api, GC_TASK, { ...GC_RUN, gcType: 'unreferenced-blobs-only' });
    assert.strictEqual(run.result, 'Succeeded', describeRun(run));
    assertClean(run);
    assert.strictEqual(run.outputs.gcUuid, GODO_GC_UUID);
    assert.strictEqual(run.outputs.gcStatus, 'succeeded');
    assert.strictEqual(run.outputs.gcType, 'unreferenced-blobs-only');
    assert.strictEqual(run.outputs.gcBlobsDeleted, '42');
    assert.strictEqual(run.outputs.gcFreedBytes, '666');
    assert.strictEqual(run.outputs.gcStartedAt, '2020-04-01T00:00:00Z');
    const start = api.requests.find((r) => r.route === 'start')!;
    assert.strictEqual(start.path, '/v2/registries/test-registry/garbage-collection');
    assert.deepStrictEqual(JSON.parse(start.body), { type: 'unreferenced blobs only' });
    assert.ok(
      api.requests.some((r) => r.route === 'list' && r.query.get('page') === '2'),
      `links.pages.next was not followed:\n${api.requests.map((r) => r.path + '?' + r.query).join('\n')}`,
    );
  });

  it('the guard waits for the active GC and settles (OpenAPI garbage_collection.yml property examples and garbage_collections.yml example)', async () => {
    api = await publishedDoApi('example', {
      registry: () => ok(OPENAPI_REGISTRY),
      active: inTurn(ok({ garbage_collection: OPENAPI_GC }), ok({ garbage_collection: OPENAPI_GC }), NONE_ACTIVE),
      list: inTurn(ok(OPENAPI_GC_LIST), ok({ ...OPENAPI_GC_LIST, garbage_collections: [{ ...OPENAPI_GC_LIST.garbage_collections[0], status: 'succeeded' }] })),
    });
    const run = await runOn(api, WAIT_TASK, { registry: 'example', pollIntervalSeconds: '1', timeoutSeconds: '20', settleSeconds: '1' });
    assert.strictEqual(run.result, 'Succeeded', describeRun(run));
    assertClean(run);
    assert.strictEqual(run.outputs.gcWasActive, 'true');
    assert.strictEqual(run.outputs.gcObservedStatus, 'succeeded');
    assert.match(run.stdout, /GC eff0feee-49c7-4e8f-ba5c-a320c109c8a8 on example is 'requested'/);
  });

  it('cancel on timeout (godo TestRegistries_UpdateGarbageCollection: PUT …/garbage-collection/mew-mew-id {"cancel": true})', async () => {
    let cancelled = false;
    api = await publishedDoApi(GODO_REGISTRY_NAME, {
      registry: () => ok(GODO_REGISTRY),
      start: () => ok({ garbage_collection: GODO_GC }, 201),
      active: (q) =>
        cancelled || q.method !== 'GET'
          ? NONE_ACTIVE
          : api!.requests.filter((r) => r.route === 'active').length === 1
            ? NONE_ACTIVE
            : ok({ garbage_collection: GODO_GC }),
      cancel: () => {
        cancelled = true;
        return ok({ garbage_collection: GODO_GC });
      },
      list: () => ok(godoGcList('/v2/registries', godoGcWith(cancelled ? 'cancelled' : 'requested'))),
    });
    const run = await runOn(api, GC_TASK, { ...GC_RUN, timeoutSeconds: '4', cancelOnTimeout: 'true' });
    assert.strictEqual(run.result, 'Failed', describeRun(run));
    assertClean(run);
    const put = api.requests.find((r) => r.route === 'cancel')!;
    assert.ok(put, describeRun(run));
    assert.strictEqual(put.method, 'PUT');
    assert.strictEqual(put.path, '/v2/registries/test-registry/garbage-collection/mew-mew-id');
    assert.deepStrictEqual(JSON.parse(put.body), { cancel: true });
    assert.match(run.resultMessage, /GC mew-mew-id did not finish within 4s .*cancel requested, now 'cancelled'/);
    assert.strictEqual(run.outputs.gcStatus, 'cancelled');
  });

  it('the deprecated /v2/registry paths (godo TestRegistry_Get, TestGarbageCollection_Start, _Get, _List; /v2/registries answers not_found.yml)', async () => {
    api = await publishedDoApi(
      GODO_REGISTRY_NAME,
      {
        account: () => ok(GODO_REGISTRY),
        start: () => ok({ garbage_collection: GODO_GC }, 201),
        active: inTurn(NONE_ACTIVE, ok({ garbage_collection: GODO_GC }), NONE_ACTIVE),
        list: () => ok(godoGcList('/v2/registry', godoGcWith('succeeded'))),
      },
      { legacyOnly: true },
    );
    const run = await runOn(api, GC_TASK, GC_RUN);
    assert.strictEqual(run.result, 'Succeeded', describeRun(run));
    assertClean(run);
    assert.strictEqual(run.outputs.gcUuid, GODO_GC_UUID);
    const gcCalls = api.requests.filter((r) => ['start', 'active', 'list'].includes(r.route) && r.path.startsWith('/v2/registry/'));
    assert.ok(
      gcCalls.some((r) => r.route === 'start' && r.path === '/v2/registry/test-registry/garbage-collection'),
      describeRun(run),
    );
    assert.ok(
      gcCalls.some((r) => r.route === 'list' && r.query.get('page') === '2'),
      'links.pages.next followed on the old path too',
    );
  });

  it('429 and 5xx with the published bodies and rate-limit headers are retried, then the published answer is used', async () => {
    api = await publishedDoApi(GODO_REGISTRY_NAME, {
      registry: inTurn({ status: 500, body: OPENAPI_SERVER_ERROR }, ok(GODO_REGISTRY)),
      start: () => ok({ garbage_collection: GODO_GC }, 201),
      active: inTurn(
        NONE_ACTIVE,
        { status: 429, body: OPENAPI_TOO_MANY_REQUESTS, headers: { 'ratelimit-remaining': '0' } },
        ok({ garbage_collection: GODO_GC }),
        NONE_ACTIVE,
      ),
      list: inTurn({ status: 500, body: OPENAPI_SERVER_ERROR }, ok(godoGcList('/v2/registries', godoGcWith('succeeded')))),
    });
    const run = await runOn(api, GC_TASK, GC_RUN);
    assert.strictEqual(run.result, 'Succeeded', describeRun(run));
    assertClean(run);
    assert.strictEqual(run.outputs.gcStatus, 'succeeded');
    assert.strictEqual(api.requests.filter((r) => r.route === 'registry').length, 2, 'the 500 was retried');
    assert.ok(api.requests.filter((r) => r.route === 'active').length >= 4, 'the 429 was retried');
  });

  it('docker-credentials (OpenAPI docker_credentials.yml: auth decodes to user:password and a line break) is used as issued, never printed', async () => {
    const reg = await startRegistry();
    try {
      await pushTinyImage(reg.host, 'published/app:1.0.0');
      api = await publishedDoApi('example', {
        account: () => ok(OPENAPI_REGISTRY),
        registry: () => ok(OPENAPI_REGISTRY),
        credentials: () => ok(OPENAPI_DOCKER_CREDENTIALS),
      });
      const issued = 'b7d03a6947b217efb6f3ec3bd3504582';
      registerSecret(issued);
      const run = await runOn(api, TAG_CHECK_TASK, {
        images: `${reg.host}/published/app:1.0.0\n${reg.host}/published/app:1.0.1`,
        useDigitalOceanCredentials: 'true',
        allowHttpRegistry: 'true',
        onExistingTag: 'warn',
      });
      assert.strictEqual(run.result, 'SucceededWithIssues', describeRun(run));
      assertClean(run);
      assert.match(run.stdout, /short-lived read-only DigitalOcean credentials for example/);
      assert.strictEqual(run.outputs.newTags, `${reg.host}/published/app:1.0.1`);
      const creds = api.requests.find((r) => r.route === 'credentials')!;
      assert.strictEqual(creds.path, '/v2/registries/example/docker-credentials');
      // The one line a secret may appear on is the agent's own ##vso[task.setsecret].
      const printed = run.stdout
        .split('\n')
        .filter((l) => !l.startsWith('##vso[task.setsecret]'))
        .join('\n');
      for (const form of [issued, OPENAPI_DOCKER_CREDENTIALS.auths['registry.digitalocean.com'].auth]) {
        assert.ok(!printed.includes(form) && !run.stderr.includes(form), `a form of the issued credential appeared:\n${describeRun(run)}`);
      }
      assert.ok(
        run.commands.some((c) => c.command === 'task.setsecret'),
        'the issued credential is registered with the agent',
      );
    } finally {
      await reg.stop();
    }
  });
});

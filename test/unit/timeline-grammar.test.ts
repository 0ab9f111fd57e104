// Unit: the build timeline reader (services/timeline.ts) against a small server of ours on
// 127.0.0.1 (real sockets): every TaskResult Azure DevOps publishes for a timeline record is a
// stage result (manuallyQueued and dependentOnManualQueue included), and a record out of shape is
// refused naming the field and why, tried once more only when the refusal repeats.
import * as assert from 'assert';
import * as http from 'http';
import { AddressInfo } from 'net';
import { TimelineClient } from '../../tasks/common/services/timeline';

async function timelineServer(records: () => unknown[]): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    const body = JSON.stringify({ records: records() });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/org/`,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const stage = (identifier: string, state: string, result: string | null) => ({ type: 'Stage', identifier, name: identifier, state, result });

describe('unit TimelineClient: what Azure DevOps publishes is accepted, nothing more', function () {
  this.timeout(20_000);

  it('every published TaskResult of a timeline record (azure-devops-extension-api TaskResult) is a stage result', async () => {
    const results = ['succeeded', 'succeededWithIssues', 'failed', 'canceled', 'skipped', 'abandoned', 'manuallyQueued', 'dependentOnManualQueue'];
    const srv = await timelineServer(() => results.map((r, i) => stage(`S${i}`, 'completed', r)));
    try {
      const stages = await new TimelineClient(srv.url, 'p', '1', 'job-token-unit').listStages();
      assert.deepStrictEqual(
        stages.map((s) => s.result),
        results,
      );
    } finally {
      await srv.close();
    }
  });

  it('a result outside TaskResult is refused naming the field, and the same refusal twice is not retried further', async () => {
    const srv = await timelineServer(() => [stage('Build', 'completed', 'exploded')]);
    try {
      await assert.rejects(new TimelineClient(srv.url, 'p', '1', 'job-token-unit').listStages(), (e: Error) => {
        assert.match(e.message, /stage record: `result` is not a task result \(the same answer twice, not retried further\)/);
        assert.ok(!e.message.includes('exploded'), e.message);
        return true;
      });
      assert.strictEqual(srv.hits(), 2);
    } finally {
      await srv.close();
    }
  });
});

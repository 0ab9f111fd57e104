// How Cosign@1 cuts the manifests it writes into cosign runs: as many runs as workers, none over
// BATCH_MAX_TARGETS, in input order, sizes differing by one at most; each run's deadline grows
// with the manifests it does in turn.
import * as assert from 'assert';
import { BATCH_MAX_TARGETS, batchFlags, batchesOf } from '../../tasks/common/workflows/cosign/batch';

const range = (n: number) => Array.from({ length: n }, (_v, i) => i);

describe('Cosign@1 batches', () => {
  it('cuts 12 manifests over 4 workers into 4 runs of 3, in input order', () => {
    assert.deepStrictEqual(batchesOf(range(12), 4), [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
      [9, 10, 11],
    ]);
  });

  it('keeps every manifest exactly once and sizes within one of each other, for any count and parallelism', () => {
    for (let n = 0; n <= 70; n++) {
      for (const parallelism of [1, 2, 3, 4, 8, 32]) {
        const batches = batchesOf(range(n), parallelism);
        assert.deepStrictEqual(batches.flat(), range(n), `${n} over ${parallelism}: all, once, in order`);
        const sizes = batches.map((b) => b.length);
        assert.ok(
          sizes.every((s) => s >= 1 && s <= BATCH_MAX_TARGETS),
          `${n} over ${parallelism}: sizes ${sizes}`,
        );
        if (n > 0) assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${n} over ${parallelism}: balanced ${sizes}`);
        assert.strictEqual(batches.length, Math.min(n, Math.max(parallelism, Math.ceil(n / BATCH_MAX_TARGETS))));
      }
    }
  });

  it('never puts more than BATCH_MAX_TARGETS in one run: 50 over 1 worker is 4 runs', () => {
    assert.deepStrictEqual(
      batchesOf(range(50), 1).map((b) => b.length),
      [13, 13, 12, 12],
    );
  });

  it("gives a run of n manifests n times cosign's own --timeout, and leaves the user's arguments alone", () => {
    const args = ['--yes', '--key=k', '--timeout=60s', '--allow-http-registry=true', '--timeout=5s'];
    assert.deepStrictEqual(batchFlags(args, 60, 3), ['--yes', '--key=k', '--timeout=180s', '--allow-http-registry=true', '--timeout=5s']);
    assert.deepStrictEqual(batchFlags(['--yes'], 60, 3), ['--yes']);
  });
});

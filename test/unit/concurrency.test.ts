// What Cosign@1's images share when they run in parallel: the limiter (never more than its limit,
// first come first served, a slot freed whatever the outcome) and the guard gate (one wait at a
// time; a 401 from an attempt that began before the last wait ended needs no other).
import * as assert from 'assert';
import { Limiter } from '../../tasks/common/platform/concurrency';
import { sleep } from '../../tasks/common/platform/retry';
import { GuardGate } from '../../tasks/common/workflows/guard/gate';
import { RegistryPause } from '../../tasks/common/workflows/cosign/pause';
import { GuardResult } from '../../tasks/common/workflows/guard';

const clear: GuardResult = { gcWaitSeconds: 0, gcWasActive: false, gcObservedStatus: 'none', stageWaitSeconds: 0, timedOut: false, message: 'clear' };

describe('unit: parallel work', () => {
  it('Limiter: at most `limit` at a time, started in the order asked, a slot freed on failure too', async () => {
    const limiter = new Limiter(3);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const work = (i: number) =>
      limiter.run(async () => {
        started.push(i);
        running++;
        most = Math.max(most, running);
        await sleep(5 + (i % 4) * 3);
        running--;
        if (i % 5 === 0) throw new Error(`job ${i} failed`);
        return i;
      });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => work(i)));
    assert.strictEqual(most, 3);
    assert.deepStrictEqual(
      started,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.strictEqual(results.filter((r) => r.status === 'rejected').length, 4);
    assert.strictEqual(limiter.running, 0);
    assert.throws(() => new Limiter(0), RangeError);
  });

  it('GuardGate: one wait for concurrent 401s; none for an attempt that began before the last wait ended', async () => {
    const whys: string[] = [];
    const gate = new GuardGate(async (why) => {
      whys.push(why);
      await sleep(30);
      return clear;
    });
    await Promise.all([gate.beforeFirstWrite(), gate.beforeFirstWrite(), gate.beforeFirstWrite()]);
    assert.deepStrictEqual(whys, ['before writing'], 'the first guard runs once for every image');
    const before = Date.now();
    await Promise.all([gate.reguard(Date.now()), gate.reguard(Date.now()), gate.reguard(Date.now())]);
    assert.deepStrictEqual(whys, ['before writing', '401 from the registry token exchange'], 'concurrent 401s share one wait');
    await gate.reguard(before);
    assert.strictEqual(whys.length, 2, 'an attempt that started before that wait ended is covered by it');
    await sleep(2);
    await gate.reguard(Date.now());
    assert.strictEqual(whys.length, 3, 'a 401 from a later attempt waits again');
  });

  it('GuardGate: attempts wait while a guard wait is in progress; a guard that fails is the job failure', async () => {
    let release!: () => void;
    const gate = new GuardGate(() => new Promise<GuardResult>((_resolve, reject) => (release = () => reject(new Error('guard timed out')))));
    const waiting = gate.reguard(Date.now());
    let idleDone = false;
    const idle = gate.idle().then(
      () => (idleDone = true),
      () => (idleDone = true),
    );
    await sleep(10);
    assert.strictEqual(idleDone, false, 'the next attempt waits for the guard');
    release();
    await assert.rejects(waiting, /guard timed out/);
    await idle;
    assert.strictEqual(gate.failure?.message, 'guard timed out');
    await gate.idle();
  });

  it('RegistryPause: holds until the longest wait asked for has passed', async () => {
    const pause = new RegistryPause();
    const t0 = Date.now();
    await pause.wait(new AbortController().signal);
    assert.ok(Date.now() - t0 < 20, 'no wait asked for: no wait');
    pause.hold(60);
    pause.hold(20);
    await pause.wait(new AbortController().signal);
    assert.ok(Date.now() - t0 >= 55, `held for the longer wait (${Date.now() - t0} ms)`);
  });
});

// Cosign@1 with many images in one step (the bundled task, the real cosign 2.x and 3.x, the real
// registry behind the emulator's front): parallelism changes the order work is done in, never what
// is signed; one image failing does not stop the others; 401s from a GC that starts while several
// images are being written lead to one guard wait; a registry's 429 holds every image.
import * as assert from 'assert';
import * as fs from 'fs';
import { tempDir, tools } from '../harness/paths';
import { pushTinyImages, run } from '../harness/registry';
import { describeRun } from '../harness/run-task';
import { COSIGN_VERSIONS, baseInputs, runCosignTask, uniqueRepo, useCosignFixture, wrapper } from './cosignSupport';

/** `n` new images in one new repository, through the front. */
function pushImages(f: ReturnType<typeof useCosignFixture>, prefix: string, n: number): Promise<{ refs: string[]; pinned: string[] }> {
  return pushTinyImages(f.reg.host, uniqueRepo(prefix), n, f.emu.registryHost);
}

/** The summary the task attached (Markdown). */
function summaryOf(r: { commands: Array<{ command: string; message: string }> }): string {
  const c = r.commands.find((x) => x.command === 'task.uploadsummary');
  assert.ok(c && fs.existsSync(c.message), 'a Markdown summary is attached');
  return fs.readFileSync(c.message, 'utf8');
}

/** The real cosign verifies a signature on every digest (one invocation, several images). */
async function allSigned(f: ReturnType<typeof useCosignFixture>, cosign: string, pinned: string[]): Promise<void> {
  await run(cosign, ['verify', '--key', f.keys.pub, '--insecure-ignore-tlog', '--allow-http-registry', '--allow-insecure-registry', ...pinned], {
    DOCKER_CONFIG: f.frontConfig,
  });
}

describe('Cosign@1 with many images (bundled task, real cosign, parallelism)', function () {
  this.timeout(180_000);
  const f = useCosignFixture();

  for (const [label, cosign] of COSIGN_VERSIONS) {
    describe(label, () => {
      it('12 images with parallelism 1 and 4: the same signatures, outputs in input order, each verified by cosign itself', async () => {
        for (const parallelism of ['1', '4']) {
          const { refs, pinned } = await pushImages(f, `many-p${parallelism}`, 12);
          const inputs = baseInputs(f, cosign, refs.join('\n'), { command: 'sign', predicate: '', parallelism, skipIfPresent: 'false' });
          const r = await runCosignTask(f, inputs);
          assert.strictEqual(r.result, 'Succeeded', describeRun(r));
          assert.strictEqual(r.outputs.digests, pinned.join(','), `parallelism ${parallelism}: digests in input order`);
          assert.strictEqual(r.outputs.digest, pinned[0]);
          assert.strictEqual(r.outputs.mediaTypes.split(',').length, 12);
          await allSigned(f, cosign, pinned);
          const md = summaryOf(r);
          for (const p of pinned) assert.ok(md.includes(p.split('@')[1]), `the summary lists ${p}`);
          // Every line about one image names it, and each image's block is printed when it ends.
          for (const ref of refs) {
            assert.ok(r.stdout.includes(`── ${ref}: written`), `a block for ${ref}`);
            assert.ok(r.stdout.includes(`[${ref}] sign `), `attempt lines name ${ref}`);
          }
        }
      });

      it('one image failing permanently: the others are signed, the task fails naming it, the summary says which', async () => {
        const { refs, pinned } = await pushImages(f, 'many-fail', 4);
        const bad = pinned[2].split('@')[1];
        const dir = tempDir('wrap');
        // The registry refuses this one digest for good (an immutable tag), as it would in production.
        const w = wrapper(
          dir,
          'cosign-deny-one',
          `if [[ " $* " == *"${bad}"* && " $* " != *" --help "* ]]; then
  echo 'Error: signing [x]: PUT https://r/v2/x/manifests/sha256-x.sig: DENIED: tag is already assigned to an image in this repository and cannot be updated due to immutability settings' >&2
  exit 1
fi
exec "${cosign}" "$@"`,
        );
        const missing = `${f.emu.registryHost}/${uniqueRepo('never-pushed')}:1.0`;
        const r = await runCosignTask(f, baseInputs(f, w, [...refs, missing].join('\n'), { command: 'sign', predicate: '', skipIfPresent: 'false' }));
        assert.strictEqual(r.result, 'Failed', describeRun(r));
        assert.match(r.resultMessage, /^2 of 5 images failed \(the others are done\): /);
        assert.ok(r.resultMessage.includes(refs[2]) && /permanent: denied/.test(r.resultMessage), r.resultMessage);
        assert.ok(r.resultMessage.includes(missing) && /manifest-unknown/.test(r.resultMessage), r.resultMessage);
        assert.ok(!r.resultMessage.includes('\n'));
        await allSigned(f, cosign, [pinned[0], pinned[1], pinned[3]]);
        const md = summaryOf(r);
        assert.match(md, /2 of 5 image\(s\) failed/);
        assert.match(md, new RegExp(`${bad}.*\\| failed \\|`));
        assert.match(md, /\| failed \|/);
        for (const p of [pinned[0], pinned[1], pinned[3]]) assert.match(md, new RegExp(`${p.split('@')[1]}.*\\| written \\|`));
      });

      it('a GC starting while several images are written: their 401s lead to one guard wait, then all are signed', async () => {
        const { refs, pinned } = await pushImages(f, 'many-401', 6);
        let started = false;
        const r = await runCosignTask(f, baseInputs(f, cosign, refs.join('\n'), { command: 'sign', predicate: '', skipIfPresent: 'false', parallelism: '4' }), {
          onLine: (line) => {
            // The first guard passes with no GC; one starts just as the writes begin.
            if (!started && line.startsWith('GC guard: Clear to write')) {
              started = true;
              f.emu.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 3 }] });
            }
          },
        });
        assert.strictEqual(r.result, 'Succeeded', describeRun(r));
        assert.ok(started, 'the GC was started after the first guard');
        const refused = f.emu.tokenRequests.filter((t) => !t.granted && /write-scoped/.test(t.reason ?? ''));
        assert.ok(refused.length >= 2, `several writes were refused during the GC (${refused.length})`);
        const waits = r.stdout.split('\n').filter((l) => l.includes('GC guard (401 from the registry token exchange)'));
        assert.strictEqual(waits.length, 1, `one guard wait for all the 401s:\n${waits.join('\n')}`);
        await allSigned(f, cosign, pinned);
      });
    });
  }

  it("a registry's 429 with Retry-After holds every image's next request to it", async () => {
    const { refs, pinned } = await pushImages(f, 'many-429', 16);
    const dir = tempDir('wrap');
    // cosign itself does not touch the registry here: only Cosign@1's own digest resolution does.
    const w = wrapper(dir, 'cosign-noop', `if [[ " $* " == *" --help "* ]]; then exec "${tools.cosign3}" "$@"; fi\nexit 0`);
    // The first registry request is refused with a 429; every one after it answers slowly, so images
    // are still being resolved while the wait the registry asked for runs.
    f.emu.fault('front', { kind: '429', retryAfterSeconds: 3 });
    f.emu.fault('front', { kind: 'slow', delayMs: 200, times: Infinity });
    const r = await runCosignTask(f, baseInputs(f, w, refs.join('\n'), { command: 'sign', predicate: '', skipIfPresent: 'false', parallelism: '4' }));
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    assert.strictEqual(r.outputs.digests, pinned.join(','));
    const front = f.emu.requests.filter((q) => q.endpoint === 'front');
    const limited = front.find((q) => q.status === 429);
    assert.ok(limited, 'the front answered 429 once');
    // Requests already in flight finish (within a second, however busy the machine); no new one starts
    // until the wait the registry asked for has passed. Without the shared hold, the other images'
    // resolutions would go on through this window.
    const during = front.filter((q) => q.at > limited.at + 1_200 && q.at < limited.at + 2_900);
    assert.deepStrictEqual(
      during.map((q) => `${q.method} ${q.path}`),
      [],
      'no registry request during the Retry-After window',
    );
  });
});

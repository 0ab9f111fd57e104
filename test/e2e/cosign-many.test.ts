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

/** A wrapper that records each run's references (after `--`) before running the real binary. */
function argvLog(): { wrap: (binary: string) => string; runs: (command: string) => string[][] } {
  const dir = tempDir('argv');
  const file = `${dir}/runs`;
  return {
    wrap: (binary) => wrapper(dir, 'cosign-logged', `[[ " $* " != *" --help "* ]] && echo "$*" >> "${file}"\nexec "${binary}" "$@"`),
    runs: (command) =>
      (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : [])
        .filter((l) => l.startsWith(`${command} `))
        .map((l) => l.slice(l.indexOf(' -- ') + 4).split(' ')),
  };
}

/**
 * How many signatures on each digest verify with the key: one real cosign verify for them all (it
 * prints one JSON list per image, in order); [0] for a single digest with none.
 */
async function signatureCounts(f: ReturnType<typeof useCosignFixture>, cosign: string, pinned: string[]): Promise<number[]> {
  const args = ['verify', '--key', f.keys.pub, '--insecure-ignore-tlog', '--allow-http-registry', '--allow-insecure-registry', '--output', 'json', ...pinned];
  try {
    const { stdout } = await run(cosign, args, { DOCKER_CONFIG: f.frontConfig });
    const lists = stdout.split('\n').filter((l) => l.startsWith('['));
    assert.strictEqual(lists.length, pinned.length, `one JSON list per image:\n${stdout}`);
    return lists.map(
      (l) =>
        (JSON.parse(l) as Array<{ critical?: { type?: string } }>).filter((e) =>
          /cosign container image signature|sigstore.dev\/cosign\/sign/.test(e.critical?.type ?? ''),
        ).length,
    );
  } catch (err) {
    if (pinned.length === 1 && /no signatures found|no matching signatures/i.test(String(err))) return [0];
    throw err;
  }
}

/** Cosign@1 sign on the images through `binary` (a wrapper around the real cosign). */
function signThrough(f: ReturnType<typeof useCosignFixture>, binary: string, refs: string[], extra: Record<string, string>): ReturnType<typeof runCosignTask> {
  return runCosignTask(f, baseInputs(f, binary, refs.join('\n'), { command: 'sign', predicate: '', ...extra }));
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

      it('12 images at parallelism 4: four cosign runs of three references each, every image signed once', async () => {
        const { refs, pinned } = await pushImages(f, 'many-batch', 12);
        const log = argvLog();
        const r = await signThrough(f, log.wrap(cosign), refs, { skipIfPresent: 'false', parallelism: '4' });
        assert.strictEqual(r.result, 'Succeeded', describeRun(r));
        const runs = log.runs('sign');
        assert.deepStrictEqual(
          runs.map((refsOfRun) => refsOfRun.length),
          [3, 3, 3, 3],
          `four runs of three: ${JSON.stringify(runs)}`,
        );
        assert.deepStrictEqual(runs.flat().sort(), [...pinned].sort(), 'every digest in exactly one run');
        assert.strictEqual(r.outputs.attempts, '1');
        assert.strictEqual(r.outputs.digests, pinned.join(','), 'digests in input order');
        assert.deepStrictEqual(
          await signatureCounts(f, cosign, pinned),
          pinned.map(() => 1),
          'one signature each',
        );
        assert.strictEqual(r.stdout.split('\n').filter((l) => /── cosign sign, one run for 3 manifests: written/.test(l)).length, 4, r.stdout);
      });

      it('a batch that stops at its second reference: the first is not signed twice, the second fails naming itself, the rest are signed', async () => {
        const { refs, pinned } = await pushImages(f, 'many-stop', 4);
        const bad = pinned[1].split('@')[1];
        const dir = tempDir('wrap');
        // As cosign does: the references in turn, stopping at the first that fails (here a tag immutability refusal).
        const stops = wrapper(
          dir,
          'cosign-stops',
          `if [[ "$1" == sign && " $* " == *"${bad}"* && " $* " != *" --help "* ]]; then
  before=(); seen=0; done_refs=0
  for a in "$@"; do
    if [[ $seen == 1 ]]; then [[ "$a" == *"${bad}" ]] && break; done_refs=1; before+=("$a"); continue; fi
    [[ "$a" == "--" ]] && seen=1 && continue
    before+=("$a")
  done
  if [[ $done_refs == 1 ]]; then "${cosign}" "\${before[@]}" || exit 1; fi
  echo 'Error: signing [x]: PUT https://r/v2/x/manifests/sha256-x.sig: DENIED: tag is already assigned to an image in this repository and cannot be updated due to immutability settings' >&2
  exit 1
fi
exec "${cosign}" "$@"`,
        );
        const log = argvLog();
        const r = await signThrough(f, log.wrap(stops), refs, { skipIfPresent: 'true', parallelism: '2' });
        assert.strictEqual(r.result, 'Failed', describeRun(r));
        assert.match(r.resultMessage, /^cosign sign failed for |^1 of 4 images failed/);
        assert.ok(r.resultMessage.includes(refs[1]) && /permanent: denied/.test(r.resultMessage), r.resultMessage);
        assert.ok(!r.resultMessage.includes(refs[0]) && !r.resultMessage.includes(refs[2]), r.resultMessage);
        assert.deepStrictEqual(
          log.runs('sign').map((x) => x.length),
          [2, 2, 1],
          "two batches of two, then the failed batch's unfinished reference on its own",
        );
        assert.ok(r.stdout.includes(`${pinned[0]} verifies now: the failed run wrote it before it stopped; not written again.`), r.stdout);
        assert.deepStrictEqual(await signatureCounts(f, cosign, [pinned[0], pinned[2], pinned[3]]), [1, 1, 1], 'one signature each');
        assert.deepStrictEqual(await signatureCounts(f, cosign, [pinned[1]]), [0], 'the refused one has none');
        assert.match(summaryOf(r), new RegExp(`${pinned[0].split('@')[1]}.*\\| written \\|`));
      });

      it('a batch failing for a transient reason: each of its images is tried again on its own, counting on from attempt 2', async () => {
        const { refs, pinned } = await pushImages(f, 'many-flaky', 3);
        const dir = tempDir('wrap');
        const once = `${dir}/failed-once`;
        const flaky = wrapper(
          dir,
          'cosign-flaky-batch',
          `if [[ "$1" == sign && " $* " != *" --help "* && ! -e "${once}" ]]; then
  touch "${once}"
  echo 'Error: signing [x]: POST https://rekor/api/v1/log/entries: unexpected status code 503 Service Unavailable' >&2
  exit 1
fi
exec "${cosign}" "$@"`,
        );
        const log = argvLog();
        const r = await signThrough(f, log.wrap(flaky), refs, { skipIfPresent: 'false', parallelism: '1' });
        assert.strictEqual(r.result, 'Succeeded', describeRun(r));
        assert.deepStrictEqual(
          log.runs('sign').map((x) => x.length),
          [3, 1, 1, 1],
        );
        assert.strictEqual(r.outputs.attempts, '2');
        for (const ref of refs) {
          assert.ok(r.stdout.includes(`[${ref}] Attempt 1/5 of sign ${ref} failed in a run for 3 manifests [transient: server-5xx]`), r.stdout);
          assert.ok(new RegExp(`\\[${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\] sign \\S+: attempt 2/5`).test(r.stdout), `${ref}: attempt 2/5`);
        }
        assert.deepStrictEqual(
          await signatureCounts(f, cosign, pinned),
          pinned.map(() => 1),
          'one signature each',
        );
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

  it('12 images of one repository: their digests cost at most one token exchange per worker, not one per image', async () => {
    const { refs } = await pushImages(f, 'many-session', 12);
    const repo = refs[0].slice(refs[0].indexOf('/') + 1, refs[0].lastIndexOf(':'));
    const dir = tempDir('wrap');
    // cosign writes nothing here: every token asked for this repository is the task's own.
    const idle = wrapper(dir, 'cosign-signs-nothing', `[[ "$1" == sign && " $* " != *" --help "* ]] && exit 0\nexec "${tools.cosign3}" "$@"`);
    const before = f.emu.tokenRequests.length;
    const r = await signThrough(f, idle, refs, { skipIfPresent: 'false', parallelism: '4' });
    assert.strictEqual(r.result, 'Succeeded', describeRun(r));
    const asked = f.emu.tokenRequests.slice(before).filter((t) => t.granted && t.scopes.some((sc) => sc.includes(`:${repo}:`)));
    assert.ok(asked.length >= 1 && asked.length <= 4, `${asked.length} token exchanges for 12 digests of one repository`);
  });

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

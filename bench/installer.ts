// CosignInstaller@1 timings, measured on this machine:
// - cold start: process start to the task's first HTTP request, seen by a local
//   mirror that timestamps requests on the same clock (the spawn time is taken
//   just before spawning); the bundled task beside the unbundled tsc output
//   (out/tasks/CosignInstallerV1/index.js, run from the repo so it finds
//   node_modules), as a ratio;
// - a fresh install (spawn to exit: download, verify, `cosign version` and the flag probes, cache)
//   verified by the release's Sigstore bundle (signed by a test Sigstore, test/harness/sigstore.ts,
//   whose trusted root is the trustedRoot input) beside the same install pinned by `checksum`,
//   in turn; the signature's cost is the difference of the medians;
// - a cache-hit run of the whole installer process (spawn to exit) with each: pinned, the cached
//   binary is hashed through one descriptor against the input; signed, the bundle kept in the cache
//   entry is verified again over the cached bytes (offline, no request). Neither runs the binary.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Mirror, readOnce, sha256, startMirror } from '../test/harness/mirror';
import { ROOT, bundledTask, tempDir, tools, unbundledTask } from '../test/harness/paths';
import { agentEnv, runTask } from '../test/harness/run-task';
import { createTestSigstore } from '../test/harness/sigstore';
import type { BenchRow } from './types';
import { inTurn, median, printWhenRunDirectly } from './types';

const RUNS = 9;
/** Fresh installs each copy ~90 MB and run cosign several times: fewer rounds. */
const FRESH_RUNS = 5;
/** The signature's cost on a fresh install, over the pinned one. */
const SIGNATURE_OVERHEAD_TARGET_MS = 500;
const CACHE_HIT_TARGET_MS = 500;
/** A fresh install from a local mirror: download, hash, copy, run cosign for its version and flags. */
const FRESH_INSTALL_TARGET_MS = 5000;

const ms = (ns: bigint) => Number(ns) / 1e6;

/** Spawn-to-first-request of one run against a mirror that answers 404 (the run then fails fast). */
async function coldStart(entry: string, mirror: Mirror, sha: string): Promise<number> {
  mirror.reset();
  const env = agentEnv();
  const t0 = process.hrtime.bigint();
  const run = await runTask('CosignInstallerV1', {
    entry,
    inputs: { version: '3.1.1', checksum: sha, downloadBaseUrl: mirror.url },
    env,
  });
  const first = mirror.firstRequestNs();
  if (first === undefined) throw new Error(`${entry} made no request:\n${run.stdout}\n${run.stderr}`);
  fs.rmSync(path.dirname(env.AGENT_TOOLSDIRECTORY), { recursive: true, force: true });
  return ms(first - t0);
}

/** The inputs of one install: pinned by `checksum`, or verified by the release signature against `trustedRoot`. */
type Verification = { checksum: string } | { trustedRoot: string };

/** Whole process, spawn to exit, of one install into `env` (fresh or a cache hit, as `cacheHit` says). */
async function timedInstall(env: Record<string, string>, mirror: Mirror, how: Verification, cacheHit: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', downloadBaseUrl: mirror.url, ...how }, env });
  const t = ms(process.hrtime.bigint() - t0);
  if (run.result !== 'Succeeded' || run.outputs['cacheHit'] !== String(cacheHit))
    throw new Error(`not a ${cacheHit ? 'cache hit' : 'fresh install'}: ${run.result}\n${run.stdout}`);
  const want = 'checksum' in how ? 'checksum' : 'signature:keyless@projectsigstore.iam.gserviceaccount.com';
  if (run.outputs['verifiedBy'] !== want) throw new Error(`verifiedBy ${run.outputs['verifiedBy']}, expected ${want}`);
  return t;
}

/** A fresh install in a new agent folder, removed afterwards. */
async function freshInstall(mirror: Mirror, how: Verification): Promise<number> {
  const env = agentEnv();
  try {
    return await timedInstall(env, mirror, how, false);
  } finally {
    fs.rmSync(path.dirname(env.AGENT_TOOLSDIRECTORY), { recursive: true, force: true });
  }
}

/** Medians of `runs` cache hits of each verification, each in its own primed agent folder, in turn. */
async function cacheHits(mirror: Mirror, pinned: Verification, signed: Verification): Promise<{ pinned: number[]; signed: number[] }> {
  const envs = [agentEnv(), agentEnv()];
  try {
    await timedInstall(envs[0], mirror, pinned, false);
    await timedInstall(envs[1], mirror, signed, false);
    await timedInstall(envs[0], mirror, pinned, true); // warm-up
    await timedInstall(envs[1], mirror, signed, true);
    const out = { pinned: [] as number[], signed: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      await inTurn(
        i,
        async () => out.pinned.push(await timedInstall(envs[0], mirror, pinned, true)),
        async () => out.signed.push(await timedInstall(envs[1], mirror, signed, true)),
      );
    }
    return out;
  } finally {
    for (const env of envs) fs.rmSync(path.dirname(env.AGENT_TOOLSDIRECTORY), { recursive: true, force: true });
  }
}

function nodeBaseline(): number {
  const t0 = process.hrtime.bigint();
  spawnSync(process.execPath, ['-e', '0']);
  return ms(process.hrtime.bigint() - t0);
}

export async function run(): Promise<BenchRow[]> {
  for (const f of [bundledTask('CosignInstallerV1'), unbundledTask('CosignInstallerV1')]) {
    if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing; run npm run build first`);
  }
  const cosign = readOnce(tools.cosign3);
  const sha = sha256(cosign);
  const empty = await startMirror(); // answers 404: only the first request matters
  const mirror = await startMirror();
  const sigstore = await createTestSigstore();
  mirror.addRelease('3.1.1', cosign, { bundle: await sigstore.signBlob(cosign) });
  const rootDir = tempDir('bench-root');
  const trustedRoot = path.join(rootDir, 'trusted_root.json');
  fs.writeFileSync(trustedRoot, sigstore.trustedRoot());
  try {
    // Warm the file cache once for each variant, then interleave the measured runs.
    await coldStart(bundledTask('CosignInstallerV1'), empty, sha);
    await coldStart(unbundledTask('CosignInstallerV1'), empty, sha);
    const bundled: number[] = [];
    const unbundled: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      bundled.push(await coldStart(bundledTask('CosignInstallerV1'), empty, sha));
      unbundled.push(await coldStart(unbundledTask('CosignInstallerV1'), empty, sha));
      baseline.push(nodeBaseline());
    }

    const pinned: Verification = { checksum: sha };
    const signed: Verification = { trustedRoot };
    await freshInstall(mirror, pinned); // warm-up
    await freshInstall(mirror, signed);
    const freshPinned: number[] = [];
    const freshSigned: number[] = [];
    for (let i = 0; i < FRESH_RUNS; i++) {
      await inTurn(
        i,
        async () => freshPinned.push(await freshInstall(mirror, pinned)),
        async () => freshSigned.push(await freshInstall(mirror, signed)),
      );
    }
    const hits = await cacheHits(mirror, pinned, signed);

    const b = median(bundled);
    const u = median(unbundled);
    const n = median(baseline);
    const fp = median(freshPinned);
    const fsig = median(freshSigned);
    const hp = median(hits.pinned);
    const hs = median(hits.signed);
    const spread = (xs: number[]) => `min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}`;
    const mb = (cosign.length / 1e6).toFixed(0);
    return [
      {
        figure: `cold start, bundled task: spawn to first HTTP request (median of ${RUNS})`,
        target: '<= 100 ms',
        measured: `${b.toFixed(1)} ms (${spread(bundled)})`,
        pass: b <= 100,
      },
      {
        figure: `cold start, unbundled tsc output (median of ${RUNS})`,
        target: 'ratio to bundled',
        measured: `${u.toFixed(1)} ms (${spread(unbundled)}); ${(u / b).toFixed(2)}x the bundled`,
        pass: u >= b,
      },
      {
        figure: `bare node -e 0, spawn to exit (median of ${RUNS}, for scale)`,
        target: 'faster than the bundled cold start',
        measured: `${n.toFixed(1)} ms`,
        pass: n < b,
      },
      {
        figure: `fresh install pinned by checksum, whole process (median of ${FRESH_RUNS}, ${mb} MB binary)`,
        target: `<= ${FRESH_INSTALL_TARGET_MS / 1000} s`,
        measured: `${(fp / 1000).toFixed(3)} s (${spread(freshPinned)} ms)`,
        pass: fp <= FRESH_INSTALL_TARGET_MS,
      },
      {
        figure: `fresh install verified by its release signature (Sigstore bundle, offline), whole process (median of ${FRESH_RUNS}, in turn with the row above)`,
        target: `<= pinned + ${SIGNATURE_OVERHEAD_TARGET_MS} ms`,
        measured: `${(fsig / 1000).toFixed(3)} s (${spread(freshSigned)} ms); ${(fsig - fp).toFixed(0)} ms over pinned`,
        pass: fsig - fp <= SIGNATURE_OVERHEAD_TARGET_MS,
      },
      {
        figure: `cache-hit install pinned by checksum, whole process (median of ${RUNS}, ${mb} MB binary re-hashed, not run)`,
        target: `<= ${CACHE_HIT_TARGET_MS / 1000} s`,
        measured: `${(hp / 1000).toFixed(3)} s (${spread(hits.pinned)} ms)`,
        pass: hp <= CACHE_HIT_TARGET_MS,
      },
      {
        figure: `cache-hit install verified by the kept release signature, whole process (median of ${RUNS}, in turn with the row above; no request, not run)`,
        target: `<= ${CACHE_HIT_TARGET_MS / 1000} s`,
        measured: `${(hs / 1000).toFixed(3)} s (${spread(hits.signed)} ms); ${(hs - hp).toFixed(0)} ms over pinned`,
        pass: hs <= CACHE_HIT_TARGET_MS,
      },
    ];
  } finally {
    await empty.close();
    await mirror.close();
    fs.rmSync(rootDir, { recursive: true, force: true });
  }
}

if (require.main === module) printWhenRunDirectly(run);

// CosignInstaller@1 timings, measured on this machine:
// - cold start: process start to the task's first HTTP request, seen by a local
//   mirror that timestamps requests on the same clock (the spawn time is taken
//   just before spawning); the bundled task beside the unbundled tsc output
//   (out/tasks/CosignInstallerV1/index.js, run from the repo so it finds
//   node_modules), as a ratio;
// - a cache-hit run of the whole installer process (spawn to exit): the cached binary is hashed
//   through one descriptor against the checksum input and not run; and the same without a pin, where
//   the digest comes from cosign_checksums.txt read again from the mirror.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Mirror, readOnce, sha256, startMirror } from '../test/harness/mirror';
import { ROOT, tools, unbundledTask, bundledTask } from '../test/harness/paths';
import { agentEnv, runTask } from '../test/harness/run-task';
import type { BenchRow } from './types';
import { median, printWhenRunDirectly } from './types';

const RUNS = 9;

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

/** Whole process, spawn to exit, of a cache hit. */
async function cacheHit(env: Record<string, string>, mirror: Mirror, sha: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const run = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', ...(sha ? { checksum: sha } : {}), downloadBaseUrl: mirror.url }, env });
  const t = ms(process.hrtime.bigint() - t0);
  if (run.result !== 'Succeeded' || run.outputs['cacheHit'] !== 'true') throw new Error(`not a cache hit: ${run.result}\n${run.stdout}`);
  return t;
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
  mirror.addRelease('3.1.1', cosign);
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

    const env = agentEnv();
    const first = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', checksum: sha, downloadBaseUrl: mirror.url }, env });
    if (first.result !== 'Succeeded') throw new Error(`priming install failed:\n${first.stdout}`);
    await cacheHit(env, mirror, sha); // warm-up
    const hits: number[] = [];
    for (let i = 0; i < RUNS; i++) hits.push(await cacheHit(env, mirror, sha));
    const unpinned: number[] = [];
    for (let i = 0; i < RUNS; i++) unpinned.push(await cacheHit(env, mirror, ''));
    fs.rmSync(path.dirname(env.AGENT_TOOLSDIRECTORY), { recursive: true, force: true });

    const b = median(bundled);
    const u = median(unbundled);
    const h = median(hits);
    const hu = median(unpinned);
    const n = median(baseline);
    const spread = (xs: number[]) => `min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}`;
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
      { figure: `bare node -e 0, spawn to exit (median of ${RUNS}, for scale)`, target: '-', measured: `${n.toFixed(1)} ms`, pass: true },
      {
        figure: `cache-hit install, whole process (median of ${RUNS}, ${(cosign.length / 1e6).toFixed(0)} MB binary re-hashed, not run)`,
        target: '<= 0.5 s',
        measured: `${(h / 1000).toFixed(3)} s (${spread(hits)} ms)`,
        pass: h <= 500,
      },
      {
        figure: `cache-hit install without a pin: cosign_checksums.txt read again (median of ${RUNS})`,
        target: '<= 0.5 s',
        measured: `${(hu / 1000).toFixed(3)} s (${spread(unpinned)} ms)`,
        pass: hu <= 500,
      },
    ];
  } finally {
    await empty.close();
    await mirror.close();
  }
}

if (require.main === module) printWhenRunDirectly(run);

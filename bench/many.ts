// Cosign@1 with many images, measured on this machine with the real cosign 3.x, the real registry
// behind the emulator's token-auth front, the same key and the agent's docker config for both sides:
// - Cosign@1 sign on 12 new images (default parallelism) vs bare `cosign sign` on the same 12
//   digests in one invocation; the same at parallelism 1, 2, 4 and 8; 50 images; 12 and 50 with
//   the registry front 20 ms away;
// - bare cosign on 12 digests split over 4 invocations at once against one invocation (the floor);
// - the per-image cost at 1, 4, 12 and 32 images, each against bare cosign on as many;
// - the recommended configuration (publicKey, skipIfPresent, verifyAfter) on 12 new images vs bare
//   `cosign sign` on the same 12;
// - the first Cosign@1 run after CosignInstaller@1 in a fresh tool folder vs a warm run;
// - peak RSS of the task with 50 images, beside a bare node's.
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Emulator, startEmulator } from '../test/harness/emulator';
import { KeyPair, generateKeyPair } from '../test/harness/keys';
import { readOnce, sha256, startMirror } from '../test/harness/mirror';
import { tempDir, tools } from '../test/harness/paths';
import { RealRegistry, pushTinyImages, startRegistry } from '../test/harness/registry';
import { agentEnv, runTask } from '../test/harness/run-task';
import type { BenchRow } from './types';
import { inTurn, median, printWhenRunDirectly } from './types';

interface Setup {
  reg: RealRegistry;
  emu: Emulator;
  keys: KeyPair;
  frontConfig: string;
  /** The agent for every Cosign@1 run (a warm flag cache, the docker config of a `docker login`). */
  agent: Record<string, string>;
}

let repoSeq = 0;

/** `n` new images in a new repository, through the front. */
function newImages(s: Setup, n: number): Promise<{ refs: string[]; pinned: string[] }> {
  return pushTinyImages(s.reg.host, `demo-registry/bench-many-${process.pid}-${++repoSeq}`, n, s.emu.registryHost);
}

/** Bare cosign signing every digest in one invocation; milliseconds, spawn to exit. */
function bareSign(s: Setup, pinned: string[]): Promise<number> {
  const args = ['sign', '--yes', '--key', s.keys.key, '--use-signing-config=false', '--tlog-upload=false', '--allow-http-registry', ...pinned];
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', COSIGN_PASSWORD: s.keys.password, DOCKER_CONFIG: s.frontConfig };
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(tools.cosign3, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`bare cosign failed: ${stderr}`))));
  });
}

function signInputs(s: Setup, images: string[], extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'sign',
    images: images.join('\n'),
    key: s.keys.key,
    keyPassword: s.keys.password,
    cosignPath: tools.cosign3,
    tlogUpload: 'false',
    allowHttpRegistry: 'true',
    skipIfPresent: 'false',
    ...extra,
  };
}

/** One Cosign@1 run, spawn to exit; optionally the peak RSS the kernel recorded for it (VmHWM). */
async function taskRun(s: Setup, inputs: Record<string, string>, agent = s.agent): Promise<{ ms: number; peakKb: number }> {
  let peakKb = 0;
  let poll: NodeJS.Timeout | undefined;
  const watch = (c: ChildProcess) => {
    poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${c.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        /* the process has ended */
      }
    }, 20);
  };
  const t0 = process.hrtime.bigint();
  const r = await runTask('CosignV1', { inputs, env: { ...agent, DOCKER_CONFIG: s.frontConfig }, onSpawn: watch, timeoutMs: 300_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (poll) clearInterval(poll);
  if (r.result !== 'Succeeded') throw new Error(`Cosign@1 failed: ${r.resultMessage}`);
  return { ms, peakKb };
}

/** Cosign@1 and bare cosign on `n` new images each, alternating which goes first; medians. */
async function sideBySide(s: Setup, n: number, runs: number, extra: Record<string, string> = {}): Promise<{ task: number; bare: number }> {
  const task: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = await newImages(s, n);
    const b = await newImages(s, n);
    await inTurn(
      i,
      async () => task.push((await taskRun(s, signInputs(s, a.refs, extra))).ms),
      async () => bare.push(await bareSign(s, b.pinned)),
    );
  }
  return { task: median(task), bare: median(bare) };
}

const fmt = (r: { task: number; bare: number }) => `${(r.task / r.bare).toFixed(2)} (${r.task.toFixed(0)} ms vs ${r.bare.toFixed(0)} ms)`;

/** Bare cosign on 12 digests split over 4 invocations at once, against one invocation on 12 others; medians. */
async function splitFloor(s: Setup, runs: number): Promise<BenchRow> {
  const split: number[] = [];
  const one: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = await newImages(s, 12);
    const b = await newImages(s, 12);
    await inTurn(
      i,
      async () => {
        const t0 = process.hrtime.bigint();
        await Promise.all([0, 1, 2, 3].map((k) => bareSign(s, a.pinned.slice(k * 3, k * 3 + 3))));
        split.push(Number(process.hrtime.bigint() - t0) / 1e6);
      },
      async () => one.push(await bareSign(s, b.pinned)),
    );
  }
  const r = { task: median(split), bare: median(one) };
  return {
    figure: '12 images: bare cosign in 4 invocations of 3 at once / in one invocation of 12 (what any step at parallelism 4 could reach)',
    target: '-',
    measured: fmt(r),
  };
}

async function twelveImages(s: Setup): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const d = await sideBySide(s, 12, 3);
  rows.push({
    figure: '12 images: Cosign@1 sign (parallelism 4, the default) / bare cosign sign of the 12 digests in one invocation (median of 3)',
    target: `≤ ${MANY_TARGET.toFixed(2)}`,
    measured: fmt(d),
    pass: d.task / d.bare <= MANY_TARGET,
  });
  const curve: string[] = [];
  for (const p of ['1', '2', '4', '8']) {
    const r = await sideBySide(s, 12, 1, { parallelism: p });
    curve.push(`${p}: ${(r.task / r.bare).toFixed(2)}`);
  }
  rows.push({
    figure: '12 images by parallelism: Cosign@1 sign / bare cosign sign in one invocation',
    target: '-',
    measured: curve.join(', '),
  });
  rows.push(await splitFloor(s, 3));
  const rec = await sideBySide(s, 12, 1, { publicKey: s.keys.pub, skipIfPresent: 'true', verifyAfter: 'true' });
  rows.push({
    figure: '12 new images, recommended configuration (publicKey, skipIfPresent, verifyAfter) / bare cosign sign of the 12',
    target: '≤ 1.20',
    measured: fmt(rec),
    pass: rec.task / rec.bare <= 1.2,
  });
  return rows;
}

async function scaling(s: Setup): Promise<BenchRow> {
  const parts: string[] = [];
  let worst = 0;
  for (const n of [1, 4, 12, 32]) {
    const r = await sideBySide(s, n, 1);
    worst = n >= 12 ? Math.max(worst, r.task / r.bare) : worst;
    parts.push(`${n}: ${(r.task / n).toFixed(0)} ms/image (${(r.task / r.bare).toFixed(2)}x bare)`);
  }
  return {
    figure: 'per-image cost of Cosign@1 sign at 1, 4, 12 and 32 images (vs bare cosign on as many, one invocation)',
    target: '≤ 0.70 x bare from 12 images',
    measured: parts.join('; '),
    pass: worst <= 0.7,
  };
}

/** The first Cosign@1 run right after CosignInstaller@1 in a fresh tool folder, vs the next (warm) run. */
async function afterInstall(s: Setup): Promise<BenchRow> {
  const cosign = readOnce(tools.cosign3);
  const mirror = await startMirror();
  mirror.addRelease('3.1.1', cosign);
  const first: number[] = [];
  const warm: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const agent = agentEnv();
      const inst = await runTask('CosignInstallerV1', { inputs: { version: '3.1.1', checksum: sha256(cosign), downloadBaseUrl: mirror.url }, env: agent });
      if (inst.result !== 'Succeeded') throw new Error(`install failed: ${inst.resultMessage}`);
      const inputs = (refs: string[]) => signInputs(s, refs, { cosignPath: inst.outputs.cosignPath });
      first.push((await taskRun(s, inputs((await newImages(s, 1)).refs), agent)).ms);
      warm.push((await taskRun(s, inputs((await newImages(s, 1)).refs), agent)).ms);
      fs.rmSync(path.dirname(agent.AGENT_TOOLSDIRECTORY), { recursive: true, force: true });
    }
  } finally {
    await mirror.close();
  }
  const ratio = median(first) / median(warm);
  return {
    figure: 'first Cosign@1 run after CosignInstaller@1 in a fresh tool folder / a warm run (median of 3)',
    target: '≤ 1.05',
    measured: `${ratio.toFixed(2)} (${median(first).toFixed(0)} ms vs ${median(warm).toFixed(0)} ms)`,
    pass: ratio <= 1.05,
  };
}

async function peakRss(s: Setup): Promise<BenchRow> {
  const { refs } = await newImages(s, 50);
  const { peakKb } = await taskRun(s, signInputs(s, refs));
  const bare = spawnSync(process.execPath, ['-e', "console.log(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status','utf8'))[1])"]);
  const nodeKb = Number(bare.stdout.toString().trim());
  return {
    figure: 'peak RSS of Cosign@1 sign with 50 images (parallelism 4), beside a bare node',
    target: '< 150 MB',
    measured: `${(peakKb / 1024).toFixed(0)} MB (${(peakKb / nodeKb).toFixed(1)}x a bare node's ${(nodeKb / 1024).toFixed(0)} MB)`,
    pass: peakKb > 0 && peakKb < 150 * 1024,
  };
}

/** What Cosign@1 on many images may cost against bare cosign signing them all in one invocation. */
const MANY_TARGET = 0.6;

/**
 * 50 images on loopback (the machine's cores are the limit), and 12 and 50 with the registry
 * front answering every request 20 ms later (the network is the limit): Cosign@1 sign against bare
 * cosign in one invocation, side by side.
 */
async function cpuAndLatency(s: Setup, slow: Setup): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const cases: Array<[string, Setup, number]> = [
    ['loopback', s, 50],
    ['front +20 ms a request', slow, 12],
    ['front +20 ms a request', slow, 50],
  ];
  for (const [where, setup, n] of cases) {
    const r = await sideBySide(setup, n, 1);
    rows.push({
      figure: `${n} images, ${where}: Cosign@1 sign (parallelism 4) / bare cosign sign of the ${n} digests in one invocation`,
      target: `≤ ${MANY_TARGET.toFixed(2)}`,
      measured: fmt(r),
      pass: r.task / r.bare <= MANY_TARGET,
    });
  }
  return rows;
}

/** A Setup whose emulator front (same registry, same key) adds `latencyMs` to every request. */
async function slowFront(s: Setup, latencyMs: number): Promise<Setup> {
  const emu = await startEmulator({ upstreamRegistry: s.reg.url, frontLatencyMs: latencyMs });
  const frontConfig = path.join(tempDir('bench-many-slow'), 'docker');
  fs.mkdirSync(frontConfig, { recursive: true });
  const auth = Buffer.from(`${emu.token}:${emu.token}`).toString('base64');
  fs.writeFileSync(path.join(frontConfig, 'config.json'), JSON.stringify({ auths: { [emu.registryHost]: { auth } } }));
  return { ...s, emu, frontConfig };
}

export async function run(): Promise<BenchRow[]> {
  const reg = await startRegistry();
  const emu = await startEmulator({ upstreamRegistry: reg.url });
  try {
    const work = tempDir('bench-many');
    const frontConfig = path.join(work, 'docker');
    fs.mkdirSync(frontConfig, { recursive: true });
    const auth = Buffer.from(`${emu.token}:${emu.token}`).toString('base64');
    fs.writeFileSync(path.join(frontConfig, 'config.json'), JSON.stringify({ auths: { [emu.registryHost]: { auth } } }));
    const s: Setup = { reg, emu, keys: await generateKeyPair(), frontConfig, agent: agentEnv() };
    // Warm-up (not counted): the flag cache, the page cache, the registry's.
    await taskRun(s, signInputs(s, (await newImages(s, 2)).refs));
    await bareSign(s, (await newImages(s, 2)).pinned);
    const rows = await twelveImages(s);
    const slow = await slowFront(s, 20);
    try {
      rows.push(...(await cpuAndLatency(s, slow)));
    } finally {
      await slow.emu.stop();
    }
    rows.push(await scaling(s));
    rows.push(await afterInstall(s));
    rows.push(await peakRss(s));
    return rows;
  } finally {
    await emu.stop();
    await reg.stop();
  }
}

if (require.main === module) printWhenRunDirectly(run);

// RegistryTagCheck@1 timings, measured on this machine against the real registry behind the
// emulator's token-auth front with DigitalOcean's short-lived credentials: the whole bundled task
// (spawn to exit) for 1, 10 and 50 existing tags, beside `crane digest` asking the same tags one
// after another (what a script in a pipeline would do), same registry, same credentials.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { startEmulator } from '../test/harness/emulator';
import { tempDir, tools } from '../test/harness/paths';
import { doEndpointEnv } from '../test/harness/pipeline-env';
import { pushTinyImages, startRegistry } from '../test/harness/registry';
import { agentEnv, runTask } from '../test/harness/run-task';
import type { BenchRow } from './types';
import { inTurn, median, printWhenRunDirectly } from './types';

const RUNS = 3;

function craneDigest(ref: string, dockerConfig: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tools.crane, ['digest', ref, '--insecure'], { env: { PATH: process.env.PATH ?? '', DOCKER_CONFIG: dockerConfig }, stdio: 'ignore' });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`crane digest ${ref} exited ${code}`))));
  });
}

export async function run(): Promise<BenchRow[]> {
  const reg = await startRegistry();
  const emu = await startEmulator({ upstreamRegistry: reg.url });
  try {
    const work = tempDir('bench-tags');
    const dockerConfig = path.join(work, 'docker');
    fs.mkdirSync(dockerConfig, { recursive: true });
    const auth = Buffer.from(`${emu.token}:${emu.token}`).toString('base64');
    fs.writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [emu.registryHost]: { auth } } }));
    const env = { ...agentEnv(), ...doEndpointEnv(emu, 'do') };
    const rows: BenchRow[] = [];
    for (const n of [1, 10, 50]) {
      const { refs } = await pushTinyImages(reg.host, `demo-registry/bench-tags-${n}`, n, emu.registryHost);
      const inputs = {
        images: refs.join('\n'),
        onExistingTag: 'warn',
        digitalOceanConnection: 'do',
        useDigitalOceanCredentials: 'true',
        allowHttpRegistry: 'true',
      };
      const task: number[] = [];
      const crane: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        await inTurn(
          i,
          async () => {
            const t0 = process.hrtime.bigint();
            const r = await runTask('RegistryTagCheckV1', { inputs, env, timeoutMs: 120_000 });
            if (r.outputs.existingTags?.split(',').length !== n) throw new Error(`tag check: ${r.result} ${r.resultMessage}`);
            task.push(Number(process.hrtime.bigint() - t0) / 1e6);
          },
          async () => {
            const t0 = process.hrtime.bigint();
            for (const ref of refs) await craneDigest(ref, dockerConfig);
            crane.push(Number(process.hrtime.bigint() - t0) / 1e6);
          },
        );
      }
      const t = median(task);
      const c = median(crane);
      rows.push({
        figure: `RegistryTagCheck@1 on ${n} existing tag(s), whole task / crane digest of each in turn (median of ${RUNS})`,
        target: n === 10 ? '< 1 s for 10 tags' : '-',
        measured: `${(t / c).toFixed(2)} (${t.toFixed(0)} ms vs ${c.toFixed(0)} ms)`,
        pass: n === 10 ? t < 1000 : undefined,
      });
    }
    return rows;
  } finally {
    await emu.stop();
    await reg.stop();
  }
}

if (require.main === module) printWhenRunDirectly(run);

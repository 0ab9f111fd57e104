// RegistryCleanup@1 in a big repository, measured on this machine against the real registry: the
// whole bundled task (spawn to exit) removing 50 of this run's tags from a repository of 2,500
// tags (it reads every page of the tag list and every tag's digest, so that it removes nothing
// another tag still needs), beside `crane delete` of the same number of manifests one after another
// by digest (what a script would do, with no such check), same registry, same repository.
import { spawn } from 'child_process';
import { tools } from '../test/harness/paths';
import { pushManyTags, startRegistry } from '../test/harness/registry';
import { agentEnv, runTask } from '../test/harness/run-task';
import type { BenchRow } from './types';
import { inTurn, median, printWhenRunDirectly } from './types';

const RUNS = 3;
const REPOSITORY_TAGS = 2500;
const REMOVED = 50;
/** The ratio the task may cost over bare deletes: it resolves every tag of the repository first. */
const TARGET_RATIO = 4;

function craneDelete(ref: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tools.crane, ['delete', ref, '--insecure'], { env: { PATH: process.env.PATH ?? '' }, stdio: 'ignore' });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`crane delete ${ref} exited ${code}`))));
  });
}

export async function run(): Promise<BenchRow[]> {
  const reg = await startRegistry();
  try {
    const repo = 'bench/big';
    await pushManyTags(reg.host, repo, REPOSITORY_TAGS);
    const task: number[] = [];
    const crane: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Each side removes tags of its own, pushed before it is timed; the repository stays at about 2,500 tags.
      const ours = [...(await pushManyTags(reg.host, repo, REMOVED, `c${i}-`)).keys()].map((t) => `${reg.host}/${repo}:${t}`);
      const theirs = [...(await pushManyTags(reg.host, repo, REMOVED, `k${i}-`)).values()].map((d) => `${reg.host}/${repo}@${d}`);
      await inTurn(
        i,
        async () => {
          const t0 = process.hrtime.bigint();
          const r = await runTask('RegistryCleanupV1', {
            inputs: { images: ours.join(','), gcGuard: 'false', allowHttpRegistry: 'true' },
            env: agentEnv(),
            timeoutMs: 300_000,
          });
          if (r.outputs.removedTags?.split(',').length !== REMOVED) throw new Error(`cleanup: ${r.result} ${r.resultMessage}`);
          task.push(Number(process.hrtime.bigint() - t0) / 1e6);
        },
        async () => {
          const t0 = process.hrtime.bigint();
          for (const ref of theirs) await craneDelete(ref);
          crane.push(Number(process.hrtime.bigint() - t0) / 1e6);
        },
      );
    }
    const t = median(task);
    const c = median(crane);
    return [
      {
        figure: `RegistryCleanup@1 removing ${REMOVED} tags of a ${REPOSITORY_TAGS}-tag repository / crane delete of ${REMOVED} digests in turn (median of ${RUNS})`,
        target: `≤ ${TARGET_RATIO.toFixed(1)}`,
        measured: `${(t / c).toFixed(2)} (${t.toFixed(0)} ms vs ${c.toFixed(0)} ms)`,
        pass: t / c <= TARGET_RATIO,
      },
    ];
  } finally {
    await reg.stop();
  }
}

if (require.main === module) printWhenRunDirectly(run);

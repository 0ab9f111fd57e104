// The stage watcher: the named stages of this run must exist, must not be this job's own, and must
// complete (any result) before the guard is clear. Stages still running in parallel are a warning
// with the YAML that orders them.
import { UserError } from '../../platform/errors';
import { StageState } from '../../services/timeline';
import { GuardSettings } from './settings';
import { GuardDeps, GuardState, during } from './state';

export function findStage(all: StageState[], wanted: string): StageState | undefined {
  const w = wanted.toLowerCase();
  return all.find((s) => s.identifier.toLowerCase() === w) ?? all.find((s) => s.name.toLowerCase() === w);
}

function stateText(s: StageState): string {
  return s.state === 'completed' ? `completed (${s.result ?? 'no result'})` : s.state;
}

/** Validates the stage names, refuses this job's own stage, and warns about stages running in parallel. */
export async function checkStages(deps: GuardDeps, settings: GuardSettings, st: GuardState, signal: AbortSignal): Promise<void> {
  const log = deps.log.info;
  const warn = deps.log.warn;
  const stagesWanted = settings.stages;
  const all = await during(st, 'the build timeline', () => deps.timeline!.listStages(signal));
  const unknown = stagesWanted.filter((s) => !findStage(all, s));
  if (unknown.length > 0) {
    const existing = all.map((s) => (s.identifier === s.name ? s.identifier : `${s.identifier} ("${s.name}")`));
    throw new UserError(
      `Input 'waitForStages': ${unknown.map((u) => `'${u}'`).join(', ')} ${unknown.length > 1 ? 'are not stages' : 'is not a stage'} of this run; its stages are: ${existing.join(', ') || '(none)'}.`,
    );
  }
  const own = (deps.currentStage ?? '').toLowerCase();
  const self = stagesWanted.find((s) => own !== '' && (findStage(all, s)?.identifier.toLowerCase() === own || s.toLowerCase() === own));
  if (self) {
    throw new UserError(`Input 'waitForStages' names '${self}', the stage this job runs in; it cannot complete before this job does.`);
  }
  st.stageStates = stagesWanted.map((s) => findStage(all, s)!);
  const parallel = st.stageStates.filter((s) => s.state !== 'completed');
  if (parallel.length > 0) {
    const ids = parallel.map((s) => s.identifier);
    const here = deps.currentStage ? `stage '${deps.currentStage}'` : "this job's stage";
    warn(
      `Stage${ids.length > 1 ? 's' : ''} ${ids.map((i) => `'${i}'`).join(', ')} ${ids.length > 1 ? 'have' : 'has'} not completed and ${ids.length > 1 ? 'run' : 'runs'} in parallel with this job; this task waits, but ordering them is safer: add \`dependsOn: [${ids.join(', ')}]\` (plus the existing dependencies) to ${here}.`,
    );
    log('To order the stages, in the pipeline YAML:');
    log(`  - stage: ${deps.currentStage || '<this stage>'}`);
    log('    dependsOn:');
    log('    - <the stages it already depends on>');
    for (const id of ids) log(`    - ${id}`);
    // Not succeeded(): that would skip this stage whenever maintenance fails, and a failed GC must not block releases.
    const anyResult = ids.map((i) => `in(dependencies.${i}.result, 'Succeeded', 'SucceededWithIssues', 'Failed', 'Skipped')`);
    log(`    condition: and(succeeded('<each stage that must pass>'), ${anyResult.join(', ')})`);
  }
  for (const s of st.stageStates) log(`Stage ${s.identifier}: ${stateText(s)}.`);
  if (parallel.length === 0) st.stagesDoneAt = Date.now();
}

/** True while a named stage has not completed. */
export function stagesPending(st: GuardState): boolean {
  return st.stageStates.some((s) => s.state !== 'completed');
}

/** One look at the build timeline: logs each stage whose state changed; notes when the last one completed. */
export async function pollStages(deps: GuardDeps, st: GuardState, signal: AbortSignal): Promise<void> {
  const all = await during(st, 'the build timeline', () => deps.timeline!.listStages(signal));
  st.stageStates = st.stageStates.map((old) => {
    const fresh = findStage(all, old.identifier) ?? old;
    if (fresh.state !== old.state || fresh.result !== old.result) deps.log.info(`Stage ${fresh.identifier}: ${stateText(fresh)}.`);
    return fresh;
  });
  if (!stagesPending(st)) st.stagesDoneAt = Date.now();
}

// The sample pipeline (samples/azure-pipelines.yml) and every YAML example of the README and the
// Marketplace overview, checked against what ships: each task of ours exists at that major version
// and takes each input given, each dependsOn and each stage a condition names is a stage of the
// file, each $(step.output) names a step of the same job and an output its task declares, and each
// stageDependencies.Stage.job.outputs['step.output'] names a stage the stage depends on, a job, a
// step and an output that exist.
import * as assert from 'assert';
import * as fs from 'fs';
import * as yaml from 'js-yaml';
import * as path from 'path';
import { ROOT } from '../harness/paths';

interface TaskShape {
  inputs: Set<string>;
  outputs: Set<string>;
}

/** Our tasks by `Name@Major`, from each task.json. */
function ourTasks(): Map<string, TaskShape> {
  const out = new Map<string, TaskShape>();
  for (const folder of fs.readdirSync(path.join(ROOT, 'tasks'))) {
    const file = path.join(ROOT, 'tasks', folder, 'task.json');
    if (!fs.existsSync(file)) continue;
    const t = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      name: string;
      version: { Major: number };
      inputs: Array<{ name: string; aliases?: string[] }>;
      outputVariables?: Array<{ name: string }>;
    };
    out.set(`${t.name}@${t.version.Major}`, {
      inputs: new Set(t.inputs.flatMap((i) => [i.name, ...(i.aliases ?? [])])),
      outputs: new Set((t.outputVariables ?? []).map((o) => o.name)),
    });
  }
  return out;
}

// Microsoft's built-in tasks the examples use, with the inputs and outputs of their task reference
// (learn.microsoft.com/azure/devops/pipelines/tasks/reference/download-secure-file-v1, docker-v2).
const BUILT_IN: Record<string, { inputs: string[]; outputs: string[] }> = {
  'DownloadSecureFile@1': { inputs: ['secureFile', 'retryCount', 'socketTimeout'], outputs: ['secureFilePath'] },
  'Docker@2': {
    inputs: [
      'containerRegistry',
      'repository',
      'command',
      'Dockerfile',
      'buildContext',
      'tags',
      'arguments',
      'addPipelineData',
      'addBaseImageData',
      'container',
    ],
    outputs: [],
  },
};

/** Predefined variable namespaces ($(Build.BuildId), $(System.AccessToken)...): not step outputs. */
const PREDEFINED = /^(Agent|Build|Environment|Pipeline|Release|Resources|System|Strategy|Checks)\./;

type Node = Record<string, unknown>;
const asList = (v: unknown): Node[] => (Array.isArray(v) ? (v as Node[]) : v && typeof v === 'object' ? [v as Node] : []);
const names = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

interface Job {
  stage: string;
  name: string;
  steps: Node[];
  node: Node;
}

class PipelineCheck {
  readonly problems: string[] = [];
  private readonly tasks = ourTasks();
  constructor(private readonly where: string) {}

  fail(what: string): void {
    this.problems.push(`${this.where}: ${what}`);
  }

  /** The shape of a step's task, or undefined (with a problem) when it is unknown. */
  taskShape(ref: string): TaskShape | undefined {
    const ours = this.tasks.get(ref);
    if (ours) return ours;
    const builtIn = BUILT_IN[ref];
    if (builtIn) return { inputs: new Set(builtIn.inputs), outputs: new Set(builtIn.outputs) };
    this.fail(`task ${ref} is neither one of ours (at that major version) nor a built-in task the examples may use`);
    return undefined;
  }

  /** Each task step: the task exists and takes every input given. */
  steps(steps: Node[]): Map<string, TaskShape> {
    const named = new Map<string, TaskShape>();
    for (const step of steps) {
      if (typeof step.task !== 'string') continue;
      const shape = this.taskShape(step.task);
      if (!shape) continue;
      for (const input of Object.keys((step.inputs as Node | undefined) ?? {})) {
        if (!shape.inputs.has(input)) this.fail(`${step.task} has no input '${input}'`);
      }
      if (typeof step.name === 'string') named.set(step.name, shape);
    }
    return named;
  }

  /** Every $(a.b) in the job names a step of the job with that output, or a predefined variable. */
  macros(job: Job, named: Map<string, TaskShape>): void {
    const text = JSON.stringify(job.steps);
    for (const m of text.matchAll(/\$\(([A-Za-z_][\w]*)\.([\w.]+)\)/g)) {
      const ref = `${m[1]}.${m[2]}`;
      if (PREDEFINED.test(ref)) continue;
      const shape = named.get(m[1]);
      if (!shape) this.fail(`$(${ref}) in job ${job.name}: no step named '${m[1]}' in the job`);
      else if (!shape.outputs.has(m[2])) this.fail(`$(${ref}) in job ${job.name}: step '${m[1]}' has no output '${m[2]}'`);
    }
  }
}

/** The whole-pipeline checks: stages, dependsOn, conditions, and outputs across stages. */
function checkPipeline(doc: Node, where: string): string[] {
  const check = new PipelineCheck(where);
  const stages = asList(doc.stages);
  const stageNames = stages.map((s) => String(s.stage));
  const jobs: Job[] = [];
  for (const s of stages) {
    for (const d of names(s.dependsOn)) if (!stageNames.includes(d)) check.fail(`stage ${s.stage} dependsOn '${d}', which is not a stage of the file`);
    for (const m of String(s.condition ?? '').matchAll(/(?:dependencies\.(\w+)\.result|(?:succeeded|failed)\('(\w+)'\))/g)) {
      const named = m[1] ?? m[2];
      if (!names(s.dependsOn).includes(named)) check.fail(`stage ${s.stage}'s condition reads stage '${named}', which it does not depend on`);
    }
    for (const j of asList(s.jobs)) jobs.push({ stage: String(s.stage), name: String(j.job ?? j.deployment), steps: asList(j.steps), node: j });
  }
  const stepsByJob = new Map<string, Map<string, TaskShape>>();
  for (const job of jobs) stepsByJob.set(`${job.stage}.${job.name}`, check.steps(job.steps));
  for (const job of jobs) {
    check.macros(job, stepsByJob.get(`${job.stage}.${job.name}`)!);
    const depends = names(stages.find((s) => s.stage === job.stage)?.dependsOn);
    const defined = new Set(Object.keys((job.node.variables as Node | undefined) ?? {}));
    for (const m of JSON.stringify(job.node.variables ?? {}).matchAll(/stageDependencies\.(\w+)\.(\w+)\.outputs\['(\w+)\.(\w+)'\]/g)) {
      const [, stage, jobName, step, output] = m;
      const shape = stepsByJob.get(`${stage}.${jobName}`)?.get(step);
      if (!depends.includes(stage)) check.fail(`job ${job.name} reads stage ${stage}'s outputs but its stage does not depend on it`);
      if (!shape) check.fail(`stageDependencies.${stage}.${jobName}: no step '${step}' in that job`);
      else if (!shape.outputs.has(output)) check.fail(`stageDependencies.${stage}.${jobName}: step '${step}' has no output '${output}'`);
    }
    const topLevel = Array.isArray(doc.variables)
      ? (doc.variables as Node[]).map((v) => String(v.name))
      : Object.keys((doc.variables as Node | undefined) ?? {});
    for (const m of JSON.stringify(job.steps).matchAll(/\$\((\w+)\)/g)) {
      if (!defined.has(m[1]) && !topLevel.includes(m[1]) && !SECRET_VARIABLES.includes(m[1])) check.fail(`$(${m[1]}) in job ${job.name} is not defined`);
    }
  }
  return check.problems;
}

/** Secret variables come from a variable group (never from YAML); the sample names the ones it expects. */
const SECRET_VARIABLES = ['cosignKeyPassword'];

/** The YAML code blocks of a Markdown file, parsed (a block that is not YAML is a problem too). */
function yamlBlocks(file: string): Array<{ where: string; doc: unknown }> {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => ({
    where: `${file} line ${text.slice(0, m.index).split('\n').length}`,
    doc: yaml.load(m[1]),
  }));
}

/** The steps of a snippet, wherever it keeps them (a steps list, a stage list, or a bare list). */
function snippetSteps(doc: unknown): Node[] {
  if (Array.isArray(doc)) return doc as Node[];
  const d = doc as Node;
  if (d.stages) return asList(d.stages).flatMap((s) => asList(s.jobs).flatMap((j) => asList(j.steps)));
  return asList(d.steps);
}

describe('docs: the sample pipeline and the YAML examples match the tasks', () => {
  const SAMPLE = path.join(ROOT, 'samples', 'azure-pipelines.yml');

  it('samples/azure-pipelines.yml: every task, input, dependsOn, condition and $(step.output) exists', () => {
    const doc = yaml.load(fs.readFileSync(SAMPLE, 'utf8')) as Node;
    assert.deepStrictEqual(checkPipeline(doc, 'samples/azure-pipelines.yml'), []);
  });

  it('the sample is complete: push, tag check, a GC stage, a guarded attest after a good build, cleanup on failure', () => {
    const doc = yaml.load(fs.readFileSync(SAMPLE, 'utf8')) as Node;
    const steps = asList(doc.stages).flatMap((s) => asList(s.jobs).flatMap((j) => asList(j.steps)));
    const used = steps.map((s) => s.task);
    for (const t of ['RegistryTagCheck@1', 'Docker@2', 'DoRegistryGarbageCollection@1', 'CosignInstaller@1', 'Cosign@1', 'RegistryCleanup@1']) {
      assert.ok(used.includes(t), `the sample uses ${t}`);
    }
    const attest = steps.find((s) => s.task === 'Cosign@1')!;
    assert.ok((attest.inputs as Node).waitForStages, 'the attest is guarded on the GC stage too');
    const attestStage = asList(doc.stages).find((s) => asList(s.jobs).some((j) => asList(j.steps).includes(attest)))!;
    assert.match(String(attestStage.condition), /succeeded\('Build'\)/, 'no attest after a failed build');
    assert.strictEqual(steps.find((s) => s.task === 'RegistryCleanup@1')!.condition, 'failed()');
  });

  it('the checker finds what it is for (a wrong input, output, step, stage and dependency)', () => {
    const doc = yaml.load(fs.readFileSync(SAMPLE, 'utf8')) as Node;
    const broken = JSON.parse(
      JSON.stringify(doc)
        .replace('"onExistingTag"', '"onExisting"')
        .replace('$(attest.digests)', '$(attest.digest_list)')
        .replace('$(signingKey.secureFilePath)', '$(signingKeys.secureFilePath)')
        .replace("outputs['tags.newTags']", "outputs['tags.newTag']"),
    ) as Node;
    asList(broken.stages)[1].dependsOn = 'Bulid';
    const problems = checkPipeline(broken, 'broken').join('\n');
    for (const expected of ["no input 'onExisting'", "no output 'digest_list'", "no step named 'signingKeys'", "no output 'newTag'", "dependsOn 'Bulid'"]) {
      assert.ok(problems.includes(expected), `${expected} in:\n${problems}`);
    }
  });

  for (const file of ['README.md', 'overview.md']) {
    it(`${file}: every YAML example parses and uses only tasks and inputs that exist`, () => {
      const problems: string[] = [];
      const blocks = yamlBlocks(file);
      assert.ok(blocks.length > 0, `${file} has YAML examples`);
      for (const { where, doc } of blocks) {
        const check = new PipelineCheck(where);
        if (!(doc as Node)?.stages) {
          const steps = snippetSteps(doc);
          check.macros({ stage: '', name: 'example', steps, node: {} }, check.steps(steps));
        }
        problems.push(...check.problems);
        if ((doc as Node)?.stages) problems.push(...checkPipeline(doc as Node, where).filter((p) => !/is not defined/.test(p)));
      }
      assert.deepStrictEqual(problems, []);
    });
  }
});

import * as assert from 'assert';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { taskJson } from '../harness/paths';
import { TaskOutcome, taskOutcome } from '../harness/vso';

/** A scenario's run: task-lib's runner, the stdout lines, the tagged ones, and what the agent makes of its commands. */
export interface ScenarioRun extends TaskOutcome {
  tr: MockTestRunner;
  lines: string[];
  /** The payloads of the scenario's tagged lines, e.g. pick('L0-CONNECT'). */
  pick(tag: string): string[];
}

/**
 * Runs an L0 scenario file under MockTestRunner, offline (the agent's node is
 * this process's node), handing it `payload` as JSON in CGG_L0. Every L0 test
 * runs its task through here.
 */
export async function runL0Scenario(scenarioFile: string, taskFolder: string, payload: unknown): Promise<ScenarioRun> {
  const tr = new MockTestRunner(scenarioFile, taskJson(taskFolder));
  tr.nodePath = process.execPath;
  process.env['CGG_L0'] = JSON.stringify(payload);
  try {
    await tr.runAsync();
  } finally {
    delete process.env['CGG_L0'];
  }
  const lines = tr.stdout.split(/\r?\n/);
  const pick = (tag: string) => lines.filter((l) => l.startsWith(tag + ' ')).map((l) => l.slice(tag.length + 1));
  assert.deepStrictEqual(pick('L0-SCENARIO-ERROR'), [], `scenario crashed:\n${tr.stdout}\n${tr.stderr}`);
  return { tr, lines, pick, ...taskOutcome(tr.stdout) };
}

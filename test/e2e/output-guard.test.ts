// The output guard is installed by runTask before any of a task's code loads, whatever the entry's
// import order. task-lib prints at load: in debug mode `Agent.ProxyPassword=<value>` (its proxy
// setup reads the variable through getVariable, which echoes it). So each bundled task, run with a
// proxy password and System.Debug, must print that echo redacted; and a probe bundle (the same
// esbuild options) whose entry imports task-lib or the workflow before runTask must be caught
// printing the password in clear: the check fails when a task prints before the guard.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, bundledTask, tempDir } from '../harness/paths';

const TASKS = ['CosignInstallerV1', 'CosignV1', 'DoRegistryGarbageCollectionV1', 'DoRegistryGcWaitV1', 'RegistryCleanupV1', 'RegistryTagCheckV1'];
// Not registered with the suite's secret scan: the probes below leak it on purpose.
const PASSWORD = 'guard-probe-password-0815';

/** Runs a bundle as the agent would, with a proxy password and debug on; its stdout and stderr. */
function runBundle(file: string): string {
  const r = spawnSync(process.execPath, [file], {
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '',
      SYSTEM_DEBUG: 'true',
      AGENT_TEMPDIRECTORY: tempDir('guard-temp'),
      AGENT_PROXYURL: 'http://127.0.0.1:9',
      AGENT_PROXYUSERNAME: 'proxyuser',
      AGENT_PROXYPASSWORD: PASSWORD,
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return r.stdout + r.stderr;
}

/** The guard held over everything printed: task-lib's load-time echo is there, and redacted. */
function guardHeld(output: string): boolean {
  return /Agent\.ProxyPassword=\*\*\*/.test(output) && !output.includes(PASSWORD);
}

/** A bundle of `entry` (a task's index.ts with lines put before it), with the build's own options. */
async function probeBundle(task: string, before: string): Promise<string> {
  const { bundleOptions } = require(path.join(ROOT, 'scripts', 'build.js')) as { bundleOptions: (entry: object, outfile: string) => object };
  const esbuild = require('esbuild') as { build: (o: object) => Promise<unknown> };
  const source = before + fs.readFileSync(path.join(ROOT, 'tasks', task, 'index.ts'), 'utf8');
  const outfile = path.join(tempDir('guard-probe'), 'index.js');
  const stdin = { contents: source, resolveDir: path.join(ROOT, 'tasks', task), loader: 'ts', sourcefile: 'index.ts' };
  await esbuild.build(bundleOptions({ stdin }, outfile));
  return outfile;
}

describe('e2e: the output guard comes before anything the task loads', function () {
  this.timeout(120_000);

  for (const task of TASKS) {
    it(`${task}: task-lib's load-time echo of Agent.ProxyPassword is redacted`, () => {
      const output = runBundle(bundledTask(task));
      assert.ok(guardHeld(output), output);
    });
  }

  const bypasses: Array<[string, string]> = [
    ['task-lib imported before runTask', "import 'azure-pipelines-task-lib/task';\n"],
    ['the workflow imported before runTask', "import '../common/workflows/tags/check';\n"],
  ];
  for (const [what, before] of bypasses) {
    it(`the check catches a bundle that prints before the guard: ${what}`, async () => {
      const output = runBundle(await probeBundle('RegistryTagCheckV1', before));
      assert.ok(output.includes(`Agent.ProxyPassword=${PASSWORD}`), output);
      assert.ok(!guardHeld(output));
    });
  }
});

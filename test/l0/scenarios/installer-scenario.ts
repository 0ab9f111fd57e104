// One L0 scenario for CosignInstaller@1, driven by the CGG_L0 environment
// variable (JSON, see InstallerScenario). It runs inside MockTestRunner's
// child process: it starts a release mirror on 127.0.0.1 in this same process
// (MockTestRunner blocks the parent with spawnSync), leaves trip-wires on
// every outgoing connection and child process, optionally mocks `os` to
// pretend another platform, then runs the unbundled task.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { startMirror } from '../../harness/mirror';
import { unbundledTask } from '../../harness/paths';
import { installTripWires, reportScenarioError } from '../../helpers/l0-tripwires';
import { startAgentSnapshot } from '../../helpers/l0-tripwires';

export interface InstallerScenario {
  /** Task inputs; "${MIRROR}" in a value becomes the mirror's base URL. */
  inputs: Record<string, string>;
  /** Pretend os.platform()/os.arch() return these. */
  platform?: { platform: string; arch: string };
  /** Files the mirror serves, by URL path. */
  serve?: Record<string, string>;
  /** URL paths the mirror accepts and never answers. */
  stall?: string[];
  /** AGENT_TOOLSDIRECTORY / AGENT_TEMPDIRECTORY parent. */
  agentDir: string;
}

async function main(): Promise<void> {
  const scenario = JSON.parse(process.env['CGG_L0'] ?? '{}') as InstallerScenario;
  const mirror = await startMirror({ unref: true, onRequest: (r) => console.log(`L0-MIRROR ${r.method} ${r.path}`) });
  for (const [p, body] of Object.entries(scenario.serve ?? {})) mirror.setFile(p, body);
  for (const p of scenario.stall ?? []) mirror.stall(p);

  installTripWires();

  const tools = path.join(scenario.agentDir, 'tools');
  const temp = path.join(scenario.agentDir, 'temp');
  fs.mkdirSync(tools, { recursive: true });
  fs.mkdirSync(temp, { recursive: true });
  process.env['AGENT_TOOLSDIRECTORY'] = tools;
  process.env['AGENT_TEMPDIRECTORY'] = temp;

  const tmr = new TaskMockRunner(unbundledTask('CosignInstallerV1'));
  for (const [k, v] of Object.entries(scenario.inputs)) tmr.setInput(k, v.split('${MIRROR}').join(mirror.url));
  // The tool cache is a real folder: let tool-lib look at it for real.
  tmr.registerMockExport('exist', (p: string) => fs.existsSync(p));
  tmr.registerMockExport('stats', (p: string) => fs.statSync(p));
  if (scenario.platform) {
    const { platform, arch } = scenario.platform;
    tmr.registerMock('os', { ...os, platform: () => platform, arch: () => arch });
  }
  // On the agent the task's first module (the output layer) reads the environment before task-lib
  // loads; here TaskMockRunner.run() loads task-lib first, so the agent's variables are read now.
  startAgentSnapshot();
  tmr.run();
}

main().catch((err) => {
  reportScenarioError(err);
  process.exitCode = 1;
});

// One L0 scenario for Cosign@1, driven by CGG_L0 (JSON, see CosignScenario).
// It runs inside MockTestRunner's child process: trip-wires log every outgoing
// connection (L0-CONNECT) and child process (L0-CHILD), secrets reach task-lib's
// vault from the environment as with the real agent, then the unbundled task runs.
import * as fs from 'fs';
import * as path from 'path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { unbundledTask } from '../../harness/paths';
import { installTripWires, reportScenarioError } from '../../helpers/l0-tripwires';
import { startAgentSnapshot } from '../../helpers/l0-tripwires';

export interface CosignScenario {
  inputs: Record<string, string>;
  /** Environment set before the task loads (ENDPOINT_*, INPUT_KEYPASSWORD, DIGITALOCEAN_ACCESS_TOKEN...). */
  env?: Record<string, string>;
  /** Inputs present but empty ('' in the agent's environment). */
  empty?: string[];
  agentDir: string;
}

function main(): void {
  const scenario = JSON.parse(process.env['CGG_L0'] ?? '{}') as CosignScenario;
  const temp = path.join(scenario.agentDir, 'temp');
  fs.mkdirSync(temp, { recursive: true });
  process.env['AGENT_TEMPDIRECTORY'] = temp;
  for (const [k, v] of Object.entries(scenario.env ?? {})) process.env[k] = v;
  // task-lib (behind the mock too) loads INPUT_* and ENDPOINT_AUTH_* into its vault when the task imports it.

  installTripWires();

  const tmr = new TaskMockRunner(unbundledTask('CosignV1'));
  for (const [k, v] of Object.entries(scenario.inputs)) tmr.setInput(k, v);
  for (const k of scenario.empty ?? []) process.env['INPUT_' + k.toUpperCase()] = '';
  tmr.registerMockExport('exist', (p: string) => fs.existsSync(p));
  tmr.registerMockExport('stats', (p: string) => fs.statSync(p));
  // On the agent the task's first module (the output layer) reads the environment before task-lib
  // loads; here TaskMockRunner.run() loads task-lib first, so the agent's variables are read now.
  startAgentSnapshot();
  tmr.run();
}

try {
  main();
} catch (err) {
  reportScenarioError(err);
  process.exitCode = 1;
}

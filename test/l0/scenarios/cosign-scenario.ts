// One L0 scenario for Cosign@1, driven by CGG_L0 (JSON, see CosignScenario).
// It runs inside MockTestRunner's child process: trip-wires log every outgoing
// connection (L0-CONNECT) and child process (L0-CHILD), secrets reach task-lib's
// vault from the environment as with the real agent, then the unbundled task runs.
import child_process = require('child_process');
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { unbundledTask } from '../../helpers/paths';

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

  const connect = net.Socket.prototype.connect as (...args: unknown[]) => net.Socket;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const o = args[0] as { host?: string; port?: number } | unknown[];
    console.log(`L0-CONNECT ${Array.isArray(o) ? JSON.stringify(o[0]) : `${(o as { host?: string }).host ?? ''}:${(o as { port?: number }).port ?? ''}`}`);
    return connect.apply(this, args);
  } as typeof net.Socket.prototype.connect;
  const cp = child_process as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const fn of ['execFile', 'spawn', 'exec', 'execFileSync', 'spawnSync', 'execSync']) {
    const real = cp[fn];
    cp[fn] = (...a: unknown[]) => {
      console.log(`L0-CHILD ${String(a[0])}`);
      return real(...a);
    };
  }

  const tmr = new TaskMockRunner(unbundledTask('CosignV1'));
  for (const [k, v] of Object.entries(scenario.inputs)) tmr.setInput(k, v);
  for (const k of scenario.empty ?? []) process.env['INPUT_' + k.toUpperCase()] = '';
  tmr.registerMockExport('exist', (p: string) => fs.existsSync(p));
  tmr.registerMockExport('stats', (p: string) => fs.statSync(p));
  tmr.run();
}

try {
  main();
} catch (err) {
  console.log(`L0-SCENARIO-ERROR ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}

// One L0 scenario for CosignInstaller@1, driven by the CGG_L0 environment
// variable (JSON, see InstallerScenario). It runs inside MockTestRunner's
// child process: it starts a release mirror on 127.0.0.1 in this same process
// (MockTestRunner blocks the parent with spawnSync), leaves trip-wires on
// every outgoing connection and child process, optionally mocks `os` to
// pretend another platform, then runs the unbundled task.
import child_process = require('child_process');
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { startMirror } from '../../helpers/mirror';
import { unbundledTask } from '../../helpers/paths';

export interface InstallerScenario {
  /** Task inputs; "${MIRROR}" in a value becomes the mirror's base URL. */
  inputs: Record<string, string>;
  /** Pretend os.platform()/os.arch() return these. */
  platform?: { platform: string; arch: string };
  /** Files the mirror serves, by URL path. */
  serve?: Record<string, string>;
  /** AGENT_TOOLSDIRECTORY / AGENT_TEMPDIRECTORY parent. */
  agentDir: string;
}

async function main(): Promise<void> {
  const scenario = JSON.parse(process.env['CGG_L0'] ?? '{}') as InstallerScenario;
  const mirror = await startMirror({ unref: true, onRequest: (r) => console.log(`L0-MIRROR ${r.method} ${r.path}`) });
  for (const [p, body] of Object.entries(scenario.serve ?? {})) mirror.setFile(p, body);

  // Trip-wires: every socket connection and every child process is logged.
  const connect = net.Socket.prototype.connect as (...args: unknown[]) => net.Socket;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const o = args[0] as { host?: string; port?: number; path?: string } | unknown[];
    const target = Array.isArray(o) ? JSON.stringify(o[0]) : `${(o as { host?: string }).host ?? ''}:${(o as { port?: number }).port ?? ''}`;
    console.log(`L0-CONNECT ${target}`);
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
  tmr.run();
}

main().catch((err) => {
  console.log(`L0-SCENARIO-ERROR ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});

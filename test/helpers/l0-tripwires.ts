// Used INSIDE an L0 scenario (the task's own process under MockTestRunner):
// logs every socket connection (L0-CONNECT) and child process (L0-CHILD), so
// a test can prove that a bad input reached neither the network nor a tool.
import child_process = require('child_process');
import * as net from 'net';

export function installTripWires(): void {
  const connect = net.Socket.prototype.connect as (...args: unknown[]) => net.Socket;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const o = args[0] as { host?: string; port?: number } | unknown[];
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
}

/** A scenario's own crash, reported so the test fails with it rather than with a confusing assertion. */
export function reportScenarioError(err: unknown): void {
  console.log(`L0-SCENARIO-ERROR ${err instanceof Error ? err.stack : String(err)}`);
}

/** Loads the task library's snapshot of the agent's variables, as the task's first module does on the agent. */
export function startAgentSnapshot(): void {
  require('../../tasks/common/platform/agent');
}

// One L0 scenario for DoRegistryGarbageCollection@1 and DoRegistryGcWait@1, driven by
// CGG_L0 (JSON, see L0Case): the unbundled task runs in this process under TaskMockRunner, against
// the test emulator started here too (so that "no request before validation" is counted,
// not assumed). After ##vso[task.complete] it prints `L0-REQUESTS <n> <endpoints json>`.
import * as path from 'path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { startEmulator, EmulatorOptions } from '../../harness/emulator';
import { startAgentSnapshot } from '../../helpers/l0-tripwires';
import { isCommand, outputLines } from '../../harness/vso';

export interface L0Case {
  task: 'DoRegistryGarbageCollectionV1' | 'DoRegistryGcWaitV1';
  inputs: Record<string, string>;
  /** Extra env; the value '$API' is replaced by the emulator's URL. */
  env?: Record<string, string>;
  /** Pass the DO connection as the agent does (endpoint id 'do1'). Default true. */
  connection?: boolean;
  emulator?: EmulatorOptions;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.env['CGG_L0'] ?? '{}') as L0Case;
  const emu = await startEmulator(spec.emulator ?? {});
  const entry = path.join(__dirname, '..', '..', '..', 'tasks', spec.task, 'index.js');
  const tmr = new TaskMockRunner(entry);
  for (const [k, v] of Object.entries(spec.inputs)) tmr.setInput(k, v);
  if (spec.connection !== false) {
    tmr.setInput('digitalOceanConnection', 'do1');
    process.env['ENDPOINT_URL_do1'] = emu.apiUrl;
    process.env['ENDPOINT_AUTH_do1'] = JSON.stringify({ scheme: 'Token', parameters: {} });
    process.env['ENDPOINT_AUTH_PARAMETER_do1_APITOKEN'] = emu.token;
    process.env['ENDPOINT_AUTH_SCHEME_do1'] = 'token';
  }
  for (const [k, v] of Object.entries(spec.env ?? {})) process.env[k] = v.replace('$API', emu.apiUrl);

  let done = false;
  const finish = async () => {
    if (done) return;
    done = true;
    const counts: Record<string, number> = {};
    for (const r of emu.requests) counts[r.endpoint] = (counts[r.endpoint] ?? 0) + 1;
    await emu.stop();
    process.stdout.write(`L0-REQUESTS ${emu.requests.length} ${JSON.stringify(counts)}\n`);
  };
  const write = process.stdout.write.bind(process.stdout);
  (process.stdout as unknown as { write: (...a: unknown[]) => boolean }).write = (chunk: unknown, ...rest: unknown[]) => {
    const ok = (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    if (outputLines(String(chunk)).some((l) => isCommand(l, 'task.complete'))) setImmediate(() => void finish());
    return ok;
  };
  // On the agent the task's first module (the output layer) reads the environment before task-lib
  // loads; here TaskMockRunner.run() loads task-lib first, so the agent's variables are read now.
  startAgentSnapshot();
  tmr.run();
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});

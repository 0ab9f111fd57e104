// What the Cosign@1 end-to-end files share: one fixture (a real registry behind the emulator's
// token-auth front, a key pair, a work folder), unique repositories, cosign wrappers, the task run
// with a DigitalOcean connection, and the real cosign's verification through the front.
import * as assert from 'assert';
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Emulator, EmulatorOptions, startEmulator } from '../harness/emulator';
import { KeyPair, generateKeyPair, writePredicate } from '../harness/keys';
import { tempDir, tools } from '../harness/paths';
import { RealRegistry, run, startRegistry } from '../harness/registry';
import { TaskRun, agentEnv, runTask } from '../harness/run-task';
import { doEndpointEnv, offlineAttestInputs } from '../harness/pipeline-env';
import { onlyOn } from '../helpers/skip';

/** Every test that runs cosign runs it with both generations. */
export const COSIGN_VERSIONS = [
  ['cosign 2.x', tools.cosign2],
  ['cosign 3.x', tools.cosign3],
] as const;

export const PREDICATE_TYPE = 'https://example.com/promotion/v1';
export const DO_ID = 'do-conn';
export const REG_ID = 'reg-conn';

export interface Fixture {
  reg: RealRegistry;
  emu: Emulator;
  keys: KeyPair;
  work: string;
  /** DOCKER_CONFIG for the test's own crane/cosign calls through the front. */
  frontConfig: string;
}

let seq = 0;
export function uniqueRepo(prefix: string): string {
  return `demo-registry/${prefix}-${process.pid}-${++seq}`;
}

/** An executable bash wrapper around a real cosign. */
export function wrapper(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
  return file;
}

/** Pushes a two-platform OCI index by tag straight to the upstream registry; returns the crane digests. */
export async function pushIndex(reg: RealRegistry, repo: string, tag: string): Promise<{ index: string; amd64: string; arm64: string }> {
  const dir = tempDir('idx');
  const digests: Record<string, string> = {};
  try {
    for (const arch of ['amd64', 'arm64']) {
      const f = path.join(dir, 'hello.txt');
      fs.writeFileSync(f, `${arch} ${Date.now()} ${Math.random()}`);
      const tar = path.join(dir, `${arch}.tar`);
      await run('tar', ['-cf', tar, '-C', dir, 'hello.txt']);
      const ref = `${reg.host}/${repo}:${arch}`;
      await run(tools.crane, ['append', '-f', tar, '-t', ref, '--insecure']);
      await run(tools.crane, ['mutate', '--set-platform', `linux/${arch}`, '-t', ref, ref, '--insecure']);
      digests[arch] = (await run(tools.crane, ['digest', ref, '--insecure'])).stdout.trim();
    }
    await run(tools.crane, [
      'index',
      'append',
      '-m',
      `${reg.host}/${repo}:amd64`,
      '-m',
      `${reg.host}/${repo}:arm64`,
      '-t',
      `${reg.host}/${repo}:${tag}`,
      '--insecure',
    ]);
    const index = (await run(tools.crane, ['digest', `${reg.host}/${repo}:${tag}`, '--insecure'])).stdout.trim();
    return { index, amd64: digests.amd64, arm64: digests.arm64 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function doEnv(f: Fixture): Record<string, string> {
  return doEndpointEnv(f.emu, DO_ID);
}

export function baseInputs(f: Fixture, cosign: string, image: string, extra: Record<string, string> = {}): Record<string, string> {
  const setup = { image, keys: f.keys, predicate: writePredicate(f.work), predicateType: PREDICATE_TYPE, cosignPath: cosign, doConnectionId: DO_ID };
  // settleSeconds 2 is longer than the emulator's tailSeconds (1): room for the cases that start a
  // GC mid-run to still find its settle time running (one case sets it equal to the tail).
  return offlineAttestInputs(setup, { settleSeconds: '2', attemptTimeoutSeconds: '60', totalTimeoutMinutes: '10', ...extra });
}

export async function runCosignTask(
  f: Fixture,
  inputs: Record<string, string>,
  options: { env?: Record<string, string>; onSpawn?: (c: ChildProcess) => void; onLine?: (l: string) => void; agent?: Record<string, string> } = {},
): Promise<TaskRun> {
  return runTask('CosignV1', {
    inputs,
    env: { ...(options.agent ?? agentEnv()), ...doEnv(f), ...(options.env ?? {}) },
    onSpawn: options.onSpawn,
    onLine: options.onLine,
    timeoutMs: 90_000,
  });
}

/** The real `cosign verify-attestation` (or verify) through the front, with a read credential. */
export async function cosignVerifies(
  f: Fixture,
  cosign: string,
  pinned: string,
  command: 'verify-attestation' | 'verify' = 'verify-attestation',
  type = PREDICATE_TYPE,
): Promise<boolean> {
  const args = [command, '--key', f.keys.pub, '--insecure-ignore-tlog', '--allow-http-registry', '--allow-insecure-registry'];
  if (command === 'verify-attestation') args.push('--type', type);
  try {
    await run(cosign, [...args, pinned], { DOCKER_CONFIG: f.frontConfig });
    return true;
  } catch {
    return false;
  }
}

export function assertNoSecrets(f: Fixture, text: string, what: string): void {
  const creds = f.emu.dockerCredentials({ readWrite: true });
  for (const secret of [f.keys.password, f.emu.token]) {
    assert.ok(!text.includes(secret), `${what} contains a secret (${secret.slice(0, 4)}…)`);
  }
  assert.ok(creds.password.length > 0);
}

export function tempEntries(agent: Record<string, string>): string[] {
  const dir = agent.AGENT_TEMPDIRECTORY;
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((e) => e.startsWith('cosign-docker-')) : [];
}

/**
 * The fixture, started before the file's tests and stopped after them; after each test any GC
 * left running ends and injected faults are cleared.
 */
export function useCosignFixture(emulator: Omit<EmulatorOptions, 'upstreamRegistry'> = {}): Fixture {
  const f = {} as Fixture;
  before(async function () {
    onlyOn(this, ['linux'], 'the real cosign and registry are provisioned for Linux');
    f.reg = await startRegistry();
    f.emu = await startEmulator({ upstreamRegistry: f.reg.url, tailSeconds: 1, ...emulator });
    f.keys = await generateKeyPair();
    f.work = tempDir('cosign-e2e');
    f.frontConfig = path.join(f.work, 'front-docker');
    fs.mkdirSync(f.frontConfig, { recursive: true });
    const auth = Buffer.from(`${f.emu.token}:${f.emu.token}`).toString('base64');
    fs.writeFileSync(path.join(f.frontConfig, 'config.json'), JSON.stringify({ auths: { [f.emu.registryHost]: { auth } } }));
  });
  after(async () => {
    await f.emu?.stop();
    await f.reg?.stop();
  });
  afterEach(() => {
    const active = f.emu?.activeGc('demo-registry');
    if (active) f.emu.finishGc('demo-registry');
    f.emu?.clearFaults();
  });

  return f;
}

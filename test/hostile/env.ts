// Shared pieces of the hostile tables: the data a hostile server injects, connection and agent
// environments, the proxy settings, a key pair, and a cosign stand-in script.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { KeyPair, generateKeyPair } from '../harness/keys';
import { tempDir } from '../harness/paths';
import { agentEnv } from '../harness/run-task';
import { registerArgvFile, registerSecret } from '../harness/secrets';
import { Proxy, closedPort, startProxy } from './servers';

/** Command sequences after each line separator the agent or a console might honour, and mid-line. */
export const INJECTIONS: Array<{ label: string; text: string }> = [
  { label: 'after \\n', text: '\n##vso[task.setvariable variable=pwned]1' },
  { label: 'after \\r', text: '\r##vso[task.uploadfile]/etc/passwd' },
  { label: 'after U+2028', text: '\u2028##vso[task.setvariable variable=pwned]x' },
  { label: 'after U+2029', text: '\u2029##vso[task.uploadfile]/etc/passwd' },
  { label: 'after U+0085', text: '\u0085##vso[task.setvariable variable=pwned]x' },
  { label: 'mid-line', text: ' ##vso[task.uploadfile]/etc/passwd' },
  { label: 'after \\n, ##[ formatting', text: '\n##[error]pwned ##vso[task.setvariable variable=pwned]1' },
];
export const inj = (i: number) => INJECTIONS[i % INJECTIONS.length];
/** A command sequence usable in an HTTP header (no line breaks). */
export const HEADER_INJECTION = '##vso[task.setvariable variable=pwned]1';

export function randomSecret(prefix: string): string {
  const s = `${prefix}${crypto.randomBytes(12).toString('hex')}`;
  registerSecret(s);
  return s;
}

export const b64 = (s: string) => Buffer.from(s).toString('base64');
export const hex64 = (seed: string) => crypto.createHash('sha256').update(seed).digest('hex');
export const FAKE_UUID = '3f2b6a1e-9c4d-4e8f-a1b2-0c9d8e7f6a5b';

export interface Agent {
  env: Record<string, string>;
  temp: string;
  tools: string;
}

export function agent(): Agent {
  const env = agentEnv(tempDir('hostile-agent'));
  return { env, temp: env.AGENT_TEMPDIRECTORY, tools: env.AGENT_TOOLSDIRECTORY };
}

/** A DigitalOcean service connection `id` pointing at `url`. */
export function doConnection(id: string, url: string, token: string): Record<string, string> {
  return {
    [`ENDPOINT_URL_${id}`]: url,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme: 'Token', parameters: { apitoken: token } }),
    [`ENDPOINT_AUTH_PARAMETER_${id}_APITOKEN`]: token,
    [`ENDPOINT_AUTH_SCHEME_${id}`]: 'Token',
  };
}

/** A dockerregistry service connection with a username and password. */
export function registryConnection(id: string, url: string, username: string, password: string): Record<string, string> {
  return {
    [`ENDPOINT_URL_${id}`]: url,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme: 'UsernamePassword', parameters: { username, password, registry: url } }),
    [`ENDPOINT_AUTH_PARAMETER_${id}_USERNAME`]: username,
    [`ENDPOINT_AUTH_PARAMETER_${id}_PASSWORD`]: password,
    [`ENDPOINT_AUTH_PARAMETER_${id}_REGISTRY`]: url,
    [`ENDPOINT_AUTH_SCHEME_${id}`]: 'UsernamePassword',
  };
}

/** The job's build timeline as the agent exposes it. */
export function timelineConnection(collection: string, token: string): Record<string, string> {
  return {
    SYSTEM_COLLECTIONURI: collection.endsWith('/') ? collection : collection + '/',
    SYSTEM_TEAMPROJECT: 'hostile',
    BUILD_BUILDID: '42',
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: token,
  };
}

export interface ProxySetup {
  env: Record<string, string>;
  secrets: string[];
  proxy?: Proxy;
}

/** The agent's proxy settings: a forwarding proxy of ours that wants them, or a closed port. */
export async function agentProxy(kind: 'forwarding' | 'closed'): Promise<ProxySetup> {
  const user = 'proxyuser';
  const password = randomSecret('proxy-pw-');
  const secrets = [password, b64(`${user}:${password}`)];
  registerSecret(secrets[1]);
  const proxy = kind === 'forwarding' ? await startProxy(user, password) : undefined;
  const url = proxy ? proxy.url : `http://127.0.0.1:${await closedPort()}`;
  return { env: { AGENT_PROXYURL: url, AGENT_PROXYUSERNAME: user, AGENT_PROXYPASSWORD: password }, secrets, proxy };
}

let keys: Promise<KeyPair> | undefined;
/** One real cosign key pair for the whole suite. */
export function keyPair(): Promise<KeyPair> {
  keys ??= generateKeyPair().then((k) => {
    registerSecret(k.password);
    return k;
  });
  return keys;
}

export interface StandIn {
  path: string;
  calls(): number;
}

/** An executable script standing in for cosign: counts its calls, then runs `body` (bash). */
export function standIn(body: string): StandIn {
  const dir = tempDir('hostile-cosign');
  const file = path.join(dir, 'cosign');
  const calls = path.join(dir, 'calls');
  fs.writeFileSync(file, `#!/usr/bin/env bash\necho "$@" >> "${calls}"\n${body}\n`, { mode: 0o755 });
  registerArgvFile(calls);
  return { path: file, calls: () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0) };
}

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from './errors';
import { readEndpointAuthParam, readEndpointUrl, readString } from './inputs';
import { BasicCredentials, CredentialLookup } from './oci';
import { onExit } from './vso';

/**
 * Registry credentials for cosign: a private, short-lived DOCKER_CONFIG
 * (mode 0700 folder, 0600 file) that only the cosign child sees, removed on
 * every exit path. Secrets never reach argv or the log.
 */

export type DockerAuths = Record<string, { auth: string }>;

/** Normalises a docker config key or URL to a bare host ("https://index.docker.io/v1/" → "docker.io"). */
export function normalizeRegistryHost(key: string): string {
  let host = key.trim();
  if (/^[a-z]+:\/\//i.test(host)) {
    try {
      host = new URL(host).host;
    } catch {
      /* keep as is */
    }
  }
  host = host.replace(/\/.*$/, '').toLowerCase();
  if (host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'registry.hub.docker.com') return 'docker.io';
  return host;
}

/** The key docker/cosign look up for a host (Docker Hub keeps its historic URL key). */
export function configKey(host: string): string {
  return normalizeRegistryHost(host) === 'docker.io' ? 'https://index.docker.io/v1/' : host;
}

export function encodeAuth(c: BasicCredentials): string {
  return Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

export function decodeAuth(auth: string): BasicCredentials | undefined {
  const s = Buffer.from(auth, 'base64').toString('utf8');
  const i = s.indexOf(':');
  if (i < 0) return undefined;
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

export function lookupFromAuths(auths: DockerAuths): CredentialLookup {
  const map = new Map<string, BasicCredentials>();
  for (const [key, value] of Object.entries(auths)) {
    const c = value?.auth ? decodeAuth(value.auth) : undefined;
    if (c) map.set(normalizeRegistryHost(key), c);
  }
  return (host: string) => map.get(normalizeRegistryHost(host));
}

export interface RegistryConnection {
  host: string;
  credentials: BasicCredentials;
}

/** A `dockerregistry` service connection: its URL and username/password, read without echo. */
export function readDockerRegistryConnection(inputName: string): RegistryConnection | undefined {
  const id = readString(inputName);
  if (!id) return undefined;
  const url = readEndpointAuthParam(id, 'registry') || readEndpointUrl(id);
  if (!url) throw new UserError(`Input '${inputName}': service connection '${id}' was not found (no registry URL).`);
  const username = readEndpointAuthParam(id, 'username');
  const password = readEndpointAuthParam(id, 'password');
  if (!username || !password) {
    throw new UserError(`Input '${inputName}': service connection '${id}' has no username/password.`);
  }
  return { host: normalizeRegistryHost(url), credentials: { username, password } };
}

/** The agent's own docker config (DOCKER_CONFIG or ~/.docker), plain `auth` entries only. */
export function readExistingDockerAuths(env: NodeJS.ProcessEnv = process.env): DockerAuths {
  const dir = env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker');
  const file = path.join(dir, 'config.json');
  try {
    const config = JSON.parse(fs.readFileSync(file, 'utf8')) as { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
    const out: DockerAuths = {};
    for (const [k, v] of Object.entries(config.auths ?? {})) {
      if (v?.auth) out[k] = { auth: v.auth };
      else if (v?.username && v?.password) out[k] = { auth: encodeAuth({ username: v.username, password: v.password }) };
    }
    return out;
  } catch {
    return {};
  }
}

export interface DockerConfigHandle {
  /** The private DOCKER_CONFIG folder, or undefined when the agent's own config is used. */
  dir?: string;
  /** Where the credentials came from, for the log (never the values). */
  source: 'dockerRegistryConnection' | 'digitalocean' | 'agent docker config' | 'anonymous';
  hosts: string[];
  lookup: CredentialLookup;
  /** Environment additions for the cosign child. */
  env: Record<string, string>;
  remove(): void;
}

/** Writes auths into a fresh private folder and registers its removal on every exit path. */
export function writePrivateDockerConfig(auths: DockerAuths, source: DockerConfigHandle['source'], tempRoot?: string): DockerConfigHandle {
  const root = tempRoot || process.env['AGENT_TEMPDIRECTORY'] || os.tmpdir();
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'cosign-docker-'));
  fs.chmodSync(dir, 0o700);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const unregister = onExit(remove);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths }), { mode: 0o600 });
  return {
    dir,
    source,
    hosts: Object.keys(auths).map(normalizeRegistryHost),
    lookup: lookupFromAuths(auths),
    env: { DOCKER_CONFIG: dir },
    remove: () => {
      remove();
      unregister();
    },
  };
}

/** Uses the agent's docker config as is (nothing written, nothing to remove). */
export function agentDockerConfig(): DockerConfigHandle {
  const auths = readExistingDockerAuths();
  const hosts = Object.keys(auths).map(normalizeRegistryHost);
  return {
    source: hosts.length ? 'agent docker config' : 'anonymous',
    hosts,
    lookup: lookupFromAuths(auths),
    env: {},
    remove: () => undefined,
  };
}

export function authsForConnection(conn: RegistryConnection): DockerAuths {
  return { [configKey(conn.host)]: { auth: encodeAuth(conn.credentials) } };
}

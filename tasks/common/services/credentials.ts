import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError, errorMessage } from '../platform/errors';
import { addCredentialPair, addSecret, warn } from '../platform/output';
import { readEndpointAuthParam, readEndpointUrl } from '../platform/inputs';
import { BasicCredentials, CredentialLookup } from './oci';
import { onExit } from '../platform/task';
import { agentEnvironment, agentTempDirectory } from '../platform/agent';

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

/** The `dockerregistry` service connection `id` (the `inputName` input's value): its URL and username/password, read without echo. */
export function dockerRegistryConnectionFrom(inputName: string, id: string): RegistryConnection | undefined {
  if (!id) return undefined;
  const url = readEndpointAuthParam(id, 'registry') || readEndpointUrl(id);
  if (!url) throw new UserError(`Input '${inputName}': service connection '${id}' was not found (no registry URL).`);
  const username = readEndpointAuthParam(id, 'username');
  const password = readEndpointAuthParam(id, 'password');
  if (!username || !password) {
    throw new UserError(`Input '${inputName}': service connection '${id}' has no username/password.`);
  }
  // The password is an endpoint secret already; its Basic/docker-config form base64(user:password) is not.
  addCredentialPair(username, password);
  return { host: normalizeRegistryHost(url), credentials: { username, password } };
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HOST_KEY_RE = /^(?:https?:\/\/)?[A-Za-z0-9.[\]:-]{1,255}(?:\/[\x21-\x7e]{0,200})?$/;
const PLAIN_HOST_RE = /^[A-Za-z0-9.-]{1,253}(?::\d{1,5})?$/;
const AUTH_MAX = 8192;

/**
 * Why an issued `auth` cannot be used as the credential it claims to be, never quoting it; undefined
 * when it can. DigitalOcean promises "a base64 encoded string containing credentials", and its
 * published example decodes to `user:password` followed by a line break: the text after the first
 * `:` is the password exactly as issued (docker and cosign read it so), line break included.
 */
export function issuedAuthProblem(auth: unknown): string | undefined {
  if (auth === undefined || auth === null) return 'is missing';
  if (typeof auth !== 'string') return `is a ${typeof auth}, not a string`;
  if (auth.length === 0) return 'is empty';
  if (auth.length > AUTH_MAX) return `has ${auth.length} characters (at most ${AUTH_MAX})`;
  if (!BASE64_RE.test(auth)) return 'is not base64 (standard alphabet, padded)';
  const bytes = Buffer.from(auth, 'base64');
  if (bytes.toString('base64') !== auth) return 'is not canonical base64';
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return 'decodes to bytes that are not UTF-8 text';
  const c = decodeAuth(auth);
  if (!c) return "decodes to text without ':' (not user:password)";
  if (!c.username) return 'decodes to an empty user name';
  if (!withoutLineBreak(c.password)) return 'decodes to an empty password';
  return undefined;
}

function withoutLineBreak(v: string): string {
  return v.replace(/\r?\n$/, '');
}

/**
 * The `auths` of a docker-credentials answer a server issued, fail closed: every entry must be a
 * registry host with a usable base64 `user:password` (issuedAuthProblem), used exactly as issued.
 * Each credential is registered as a secret (with the agent too) before anything is checked, and
 * every form of it once decoded (the password with and without its trailing line break, and the
 * base64 of each pair), so no form of it can reach the log; a refusal names the entry and what is
 * wrong, and quotes nothing of the body.
 */
export function issuedDockerAuths(raw: unknown, what: string): DockerAuths {
  const refuse = (why: string) => new Error(`${what} answered without usable registry credentials (${why}); the answer is not printed.`);
  const auths = (raw as { auths?: unknown } | null)?.auths;
  if (!auths || typeof auths !== 'object' || Array.isArray(auths)) throw refuse(auths === undefined ? '`auths` is missing' : '`auths` is not an object');
  const entries = Object.entries(auths as Record<string, unknown>);
  for (const [, v] of entries) {
    const auth = (v as { auth?: unknown } | null)?.auth;
    if (typeof auth === 'string') addSecret(auth, { registerWithAgent: true });
  }
  if (entries.length === 0 || entries.length > 16) throw refuse(`\`auths\` has ${entries.length} entries (1 to 16)`);
  const out: DockerAuths = {};
  entries.forEach(([key, v], i) => {
    const name = PLAIN_HOST_RE.test(key) ? `auths['${key}']` : `auths entry ${i + 1}`;
    if (!HOST_KEY_RE.test(key)) throw refuse(`the key of ${name} is not a registry host`);
    const auth = (v as { auth?: unknown } | null)?.auth;
    const problem = issuedAuthProblem(auth);
    if (problem !== undefined) throw refuse(`\`${name}.auth\` ${problem}`);
    const c = decodeAuth(auth as string)!;
    addCredentialPair(c.username, c.password, { registerWithAgent: true });
    const bare = withoutLineBreak(c.password);
    if (bare !== c.password) addCredentialPair(c.username, bare, { registerWithAgent: true });
    out[key] = { auth: auth as string };
  });
  return out;
}

/**
 * The agent's own docker config (DOCKER_CONFIG or ~/.docker), plain `auth` entries only. No file is
 * anonymous access, silently; a file that cannot be read or is not a docker config is anonymous
 * access with one warning (`onUnusable`), since the user meant to give credentials. Every credential
 * read is registered as a secret (its base64 `auth` form too) before anything else uses it.
 */
export function readExistingDockerAuths(
  env: Readonly<Record<string, string | undefined>> = agentEnvironment(),
  onUnusable: (line: string) => void = warn,
): DockerAuths {
  const dir = env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker');
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      onUnusable(`The agent's docker config ${file} cannot be read (${errorMessage(err)}): registry requests are anonymous.`);
    return {};
  }
  let config: { auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown }> };
  try {
    config = JSON.parse(text) as typeof config;
    if (!config || typeof config !== 'object' || (config.auths !== undefined && (typeof config.auths !== 'object' || config.auths === null)))
      throw new Error('no auths object');
  } catch {
    onUnusable(`The agent's docker config ${file} is not a docker config (JSON with an auths object): registry requests are anonymous.`);
    return {};
  }
  const out: DockerAuths = {};
  for (const [k, v] of Object.entries(config.auths ?? {})) {
    if (typeof v?.auth === 'string' && v.auth) {
      addSecret(v.auth);
      const c = decodeAuth(v.auth);
      if (c?.password) addCredentialPair(c.username, c.password);
      out[k] = { auth: v.auth };
    } else if (typeof v?.username === 'string' && typeof v?.password === 'string' && v.username && v.password) {
      addCredentialPair(v.username, v.password);
      out[k] = { auth: encodeAuth({ username: v.username, password: v.password }) };
    }
  }
  return out;
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

/**
 * Writes auths into a fresh private folder and registers its removal on every exit path. A folder
 * that cannot be removed (`removeFolder` throws) is one warning naming it: it holds credentials.
 */
export function writePrivateDockerConfig(
  auths: DockerAuths,
  source: DockerConfigHandle['source'],
  tempRoot?: string,
  removeFolder: (dir: string) => void = (d) => fs.rmSync(d, { recursive: true, force: true }),
): DockerConfigHandle {
  const root = tempRoot || agentTempDirectory() || os.tmpdir();
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'cosign-docker-'));
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try {
      removeFolder(dir);
    } catch (err) {
      warn(`The private docker config ${dir} (registry credentials) could not be removed: ${errorMessage(err)}. Remove it by hand.`);
    }
  };
  const unregister = onExit(remove);
  try {
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths }), { mode: 0o600 });
  } catch (err) {
    // A folder that could not be filled is removed at once, not left for the exit hook.
    remove();
    unregister();
    throw err;
  }
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

/** Uses the agent's docker config as is (nothing written, nothing to remove); `onUnusable` hears of a config that cannot be used. */
export function agentDockerConfig(onUnusable: (line: string) => void = warn): DockerConfigHandle {
  const auths = readExistingDockerAuths(agentEnvironment(), onUnusable);
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

// How a task reaches a registry, shared by every task that reads or writes one (Cosign@1,
// RegistryTagCheck@1): the inputs that choose its credentials, the rules between them, and the
// credentials themselves (a docker-registry connection, DigitalOcean's short-lived ones, else the
// agent's own docker config).
import { CancelledError, UserError } from '../platform/errors';
import { Logger } from '../platform/output';
import { RetryBudget, linkedDeadline } from '../platform/retry';
import { SettingValues, SettingsTable, bool, connection } from '../platform/settings';
import { formatDuration } from '../platform/task';
import {
  DockerAuths,
  DockerConfigHandle,
  RegistryConnection,
  agentDockerConfig,
  authsForConnection,
  dockerRegistryConnectionFrom,
  issuedDockerAuths,
  writePrivateDockerConfig,
} from '../services/credentials';
import { DigitalOceanClient, DoConnection, doConnectionFrom } from '../services/digitalocean';
import { ImageReference, ResolveOptions, parseImageReference } from '../services/oci';

/** The inputs that choose how a registry is reached, as every such task's task.json declares them. */
export const REGISTRY_ACCESS_SETTINGS = {
  dockerRegistryConnection: connection('dockerregistry'),
  digitalOceanConnection: connection('digitalocean'),
  useDigitalOceanCredentials: bool(false),
  allowHttpRegistry: bool(false),
  allowInsecureRegistry: bool(false),
} as const satisfies SettingsTable;

export interface RegistryAccess {
  registryConnection?: RegistryConnection;
  doConnection?: DoConnection;
  useDigitalOceanCredentials: boolean;
  allowHttpRegistry: boolean;
  allowInsecureRegistry: boolean;
}

/** The connections the inputs name, and the rules between them: one source of registry credentials. */
export function registryAccessFrom(v: SettingValues<typeof REGISTRY_ACCESS_SETTINGS>): RegistryAccess {
  const registryConnection = dockerRegistryConnectionFrom('dockerRegistryConnection', v.dockerRegistryConnection);
  const doConnection = doConnectionFrom('digitalOceanConnection', v.digitalOceanConnection, false);
  if (v.useDigitalOceanCredentials && !doConnection) {
    throw new UserError("Input 'useDigitalOceanCredentials' is true, but no 'digitalOceanConnection' (or DIGITALOCEAN_ACCESS_TOKEN) is given.");
  }
  if (v.useDigitalOceanCredentials && registryConnection) {
    throw new UserError("Inputs 'useDigitalOceanCredentials' and 'dockerRegistryConnection' are exclusive: choose one source of registry credentials.");
  }
  return {
    registryConnection,
    doConnection,
    useDigitalOceanCredentials: v.useDigitalOceanCredentials,
    allowHttpRegistry: v.allowHttpRegistry,
    allowInsecureRegistry: v.allowInsecureRegistry,
  };
}

/**
 * The registry's name and short-lived credentials from DigitalOcean, bounded by `totalMs` whatever
 * the API does; the answer is checked (and its secrets registered) before it is used.
 */
export async function digitalOceanAuths(
  client: DigitalOceanClient,
  registryName: string,
  options: { readWrite: boolean; expirySeconds: number },
  totalMs: number,
  signal: AbortSignal,
): Promise<{ registry: string; auths: DockerAuths }> {
  const deadline = linkedDeadline(signal, totalMs);
  try {
    const registry = await client.resolveRegistry(registryName, deadline.signal);
    const answer = await client.dockerCredentials(registry, options, deadline.signal);
    return { registry, auths: issuedDockerAuths(answer, 'DigitalOcean API docker-credentials') };
  } catch (err) {
    if (deadline.expired() && !signal.aborted) {
      throw new UserError(`DigitalOcean registry credentials were not obtained within totalTimeoutMinutes (${formatDuration(Math.round(totalMs / 1000))}).`);
    }
    if (err instanceof CancelledError || signal.aborted) throw new CancelledError();
    throw err;
  } finally {
    deadline.clear();
  }
}

export interface CredentialRequest {
  /** The DigitalOcean registry ('' = the account's only one). */
  registryName: string;
  readWrite: boolean;
  /** How long DigitalOcean's credentials must last. */
  expirySeconds: number;
  /** The task's own retry budget: the calls it makes for itself follow it. */
  budget: RetryBudget;
  log: Logger;
  signal: AbortSignal;
}

/** Registry credentials: a private DOCKER_CONFIG (a connection, or DigitalOcean's short-lived ones), else the agent's. */
export async function registryCredentials(access: RegistryAccess, req: CredentialRequest): Promise<DockerConfigHandle> {
  if (access.registryConnection) return writePrivateDockerConfig(authsForConnection(access.registryConnection), 'dockerRegistryConnection');
  if (!access.useDigitalOceanCredentials || !access.doConnection) return agentDockerConfig(req.log.warn);
  const { budget } = req;
  const client = new DigitalOceanClient(access.doConnection, {
    log: req.log.debug,
    maxAttempts: budget.maxAttempts,
    initialBackoffSeconds: budget.initialBackoffSeconds,
    maxBackoffSeconds: budget.maxBackoffSeconds,
    requestTimeoutMs: Math.min(30_000, budget.attemptTimeoutSeconds * 1000),
    callTimeoutSeconds: budget.totalTimeoutSeconds,
  });
  const options = { readWrite: req.readWrite, expirySeconds: req.expirySeconds };
  const c = await digitalOceanAuths(client, req.registryName, options, budget.totalTimeoutSeconds * 1000, req.signal);
  const creds = writePrivateDockerConfig(c.auths, 'digitalocean');
  req.log.info(
    `Registry credentials: short-lived ${req.readWrite ? 'read-write' : 'read-only'} DigitalOcean credentials for ${c.registry} (expire in ${formatDuration(req.expirySeconds)}).`,
  );
  return creds;
}

/** Says where the credentials come from (never what they are). */
export function describeCredentials(creds: DockerConfigHandle, log: Logger): void {
  if (creds.dir) log.info(`Registry credentials: ${creds.source} for ${creds.hosts.join(', ')} in a private DOCKER_CONFIG (removed when the task ends).`);
  else log.info(`Registry credentials: ${creds.source === 'anonymous' ? 'none (anonymous)' : "the agent's docker config"}.`);
}

/**
 * A small budget for each registry request of a tag check or a cleanup: a registry that is down
 * should fail them in about a minute, not hold the pipeline (3 attempts of at most 30 s, waits of
 * at most 4 s).
 */
export const SHORT_REGISTRY_BUDGET: RetryBudget = {
  maxAttempts: 3,
  attemptTimeoutSeconds: 30,
  initialBackoffSeconds: 1,
  maxBackoffSeconds: 4,
  totalTimeoutSeconds: 120,
};

/** What one registry request is made with: the access rules, the credentials, its deadlines. */
export function registryRequestOptions(
  access: RegistryAccess,
  creds: DockerConfigHandle,
  request: { timeoutMs: number; signal: AbortSignal; cancelSignal: AbortSignal; log?: (line: string) => void },
): ResolveOptions {
  return {
    credentials: creds.lookup,
    allowHttp: access.allowHttpRegistry,
    allowInsecure: access.allowInsecureRegistry,
    ...request,
  };
}

/**
 * The `images` input as tags, each written out (`repo:tag`): a digest reference names no tag, and a
 * reference without one is not silently `:latest` (a check or a cleanup of a tag nobody named).
 */
export function tagReferencesFrom(lines: string[], why: string): ImageReference[] {
  if (lines.length === 0) throw new UserError("Input 'images' is required and was empty.");
  return lines.map((line) => {
    const ref = parseImageReference(line, 'images');
    const name = ref.original.split('@')[0];
    const written = name.slice(name.lastIndexOf('/') + 1).includes(':');
    if (ref.digest || !ref.tag || !written) {
      const hint = ref.digest ? 'a digest reference' : `write the tag out, e.g. '${name}:1.0'; no tag is not ':latest' here`;
      throw new UserError(`Input 'images': '${ref.original}' names no tag (${hint}; ${why}).`);
    }
    return ref;
  });
}

import * as fs from 'fs';
import { pipelineVariable } from '../../platform/agent';
import { UserError } from '../../platform/errors';
import { requireHttpUrl } from '../../platform/inputs';
import { SettingValues, SettingsTable, bool, connection, int, lines, pick, secret, text } from '../../platform/settings';
import { quote } from '../../platform/output';
import { RetryBudget, assertBudget } from '../../platform/retry';
import { COSIGN_COMMANDS, CosignCommand, isWriteCommand, splitArguments } from '../../tools/cosign';
import { ImageReference, parseImageReference } from '../../services/oci';
import { DoConnection } from '../../services/digitalocean';
import { REGISTRY_ACCESS_SETTINGS, registryAccessFrom } from '../access';
import { GUARD_SETTINGS, GuardSettings, guardSettingsFrom } from '../guard';
import { RegistryConnection } from '../../services/credentials';
import { KeyVaultSettings, keyVaultSettingsFrom } from './keyvault-settings';

/** The inputs of Cosign@1, as its task.json declares them. */
export const COSIGN_SETTINGS = {
  command: pick(COSIGN_COMMANDS, 'attest'),
  images: lines(),
  key: text(),
  keyPassword: secret(),
  azureSubscription: connection('AzureRM'),
  keyVaultKey: text(),
  publicKey: text(),
  predicate: text(),
  predicateType: text('custom'),
  annotations: lines(),
  recursive: bool(false),
  ...REGISTRY_ACCESS_SETTINGS,
  gcGuard: bool(true),
  ...GUARD_SETTINGS,
  guardTimeoutMinutes: int(30, 1, 1440),
  guardTimeoutSeconds: int(0, 0, 86_400),
  maxAttempts: int(5, 1, 100),
  attemptTimeoutSeconds: int(180, 1, 86_400),
  initialBackoffSeconds: int(5, 0, 3600),
  maxBackoffSeconds: int(60, 0, 3600),
  totalTimeoutMinutes: int(20, 1, 1440),
  parallelism: int(4, 1, 16),
  resolveDigest: bool(true),
  skipIfPresent: bool(true),
  verifyAfter: bool(false),
  tlogUpload: bool(true),
  rekorUrl: text(),
  cosignPath: text(),
  arguments: text(),
} as const satisfies SettingsTable;

export type CosignInputs = SettingValues<typeof COSIGN_SETTINGS>;

/**
 * Every Cosign@1 setting, checked before any network request or child process: what each input
 * needs of the others, files that must exist, and the retry budget that must fit its total.
 */
export interface CosignTaskSettings {
  command: CosignCommand;
  images: ImageReference[];
  /** Where the images came from: the input, or the job's own docker push (RESOURCE_URIS). */
  imagesFrom: 'images' | 'RESOURCE_URIS';
  key: string;
  keyPassword: string;
  /** keyVaultKey: signs through Azure Key Vault (the private key never leaves it); key is then empty. */
  keyVault?: KeyVaultSettings;
  publicKey: string;
  predicate: string;
  predicateType: string;
  annotations: string[];
  recursive: boolean;
  registryConnection?: RegistryConnection;
  doConnection?: DoConnection;
  useDigitalOceanCredentials: boolean;
  gcGuard: boolean;
  guard: GuardSettings;
  budget: RetryBudget;
  /** Images and platform manifests resolved, checked, written and verified at most this many at a time. */
  parallelism: number;
  resolveDigest: boolean;
  skipIfPresent: boolean;
  verifyAfter: boolean;
  tlogUpload: boolean;
  rekorUrl: string;
  allowInsecureRegistry: boolean;
  allowHttpRegistry: boolean;
  cosignPath: string;
  extraArgs: string[];
}

/** KMS and other provider URIs (awskms://, gcpkms://, azurekms://, hashivault://, k8s://, pkcs11:). */
export function isKeyUri(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^pkcs11:/i.test(value);
}

function requireKeyFile(inputName: string, value: string): void {
  if (isKeyUri(value)) return;
  let st: fs.Stats;
  try {
    st = fs.statSync(value);
  } catch {
    throw new UserError(`Input '${inputName}': the file '${quote(value, 200)}' does not exist on the agent.`);
  }
  if (!st.isFile()) throw new UserError(`Input '${inputName}': '${quote(value, 200)}' is not a file.`);
}

type SigningSettings = Pick<
  CosignTaskSettings,
  'command' | 'images' | 'imagesFrom' | 'key' | 'keyPassword' | 'keyVault' | 'publicKey' | 'predicate' | 'predicateType' | 'annotations' | 'recursive'
>;
type ConnectionSettings = Pick<CosignTaskSettings, 'registryConnection' | 'doConnection' | 'useDigitalOceanCredentials' | 'gcGuard' | 'guard'>;
type RunSettings = Pick<
  CosignTaskSettings,
  'resolveDigest' | 'skipIfPresent' | 'verifyAfter' | 'tlogUpload' | 'rekorUrl' | 'allowInsecureRegistry' | 'allowHttpRegistry' | 'cosignPath' | 'extraArgs'
>;

/**
 * With `images` empty: the images a preceding Docker@2 push recorded for the job in RESOURCE_URIS,
 * comma-separated `<scheme>://<reference>` (as the in-box Notation task reads them:
 * microsoft/azure-pipelines-tasks, Tasks/NotationV0/src/lib/variables.ts). Each reference is
 * checked like an `images` line; none at all is a one-line error.
 */
function pushedImages(): { images: ImageReference[]; imagesFrom: 'RESOURCE_URIS' } {
  const recorded = (pipelineVariable('RESOURCE_URIS') ?? '').trim();
  if (!recorded) {
    throw new UserError("Input 'images' is empty, and no docker push of this job recorded any images (RESOURCE_URIS): name the images to sign.");
  }
  const images = recorded
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
    .map((uri) => {
      const parts = uri.split('://');
      if (parts.length !== 2 || !/^[a-z][a-z0-9+.-]*$/i.test(parts[0])) {
        throw new UserError(`RESOURCE_URIS holds '${quote(uri)}', which is not <scheme>://<image reference>; set 'images' instead.`);
      }
      return parseImageReference(parts[1], 'images (from RESOURCE_URIS)');
    });
  return { images, imagesFrom: 'RESOURCE_URIS' };
}

/** What cosign runs on and with: the command, the images, keys, predicate and annotations. */
function signingSettings(v: CosignInputs): SigningSettings {
  const { command, key, keyPassword, publicKey, predicate, predicateType, annotations, recursive } = v;
  const { images, imagesFrom } =
    v.images.length > 0 ? { images: v.images.map((l) => parseImageReference(l, 'images')), imagesFrom: 'images' as const } : pushedImages();
  const keyVault = keyVaultSettingsFrom(v);
  if (isWriteCommand(command) && !keyVault) {
    if (!key) throw new UserError(`Input 'key' is required for command '${command}' (or 'keyVaultKey', to sign with an Azure Key Vault key).`);
    requireKeyFile('key', key);
  }
  if (!isWriteCommand(command) && !publicKey && !keyVault) throw new UserError(`Input 'publicKey' is required for command '${command}'.`);
  if (publicKey) requireKeyFile('publicKey', publicKey);
  if (command === 'attest') requirePredicateFile(predicate);
  if (/\s/.test(predicateType)) throw new UserError(`Input 'predicateType' must not contain spaces, got '${quote(predicateType)}'.`);
  for (const a of annotations) {
    if (!/^[^=\s]+=.*$/.test(a)) throw new UserError(`Input 'annotations': each line must be key=value, got '${quote(a)}'.`);
  }
  if (annotations.length > 0 && (command === 'attest' || command === 'verify-attestation')) {
    throw new UserError(`Input 'annotations' applies to 'sign' and 'verify' only (cosign ${command} has no annotations).`);
  }
  return { command, images, imagesFrom, key, keyPassword, keyVault, publicKey, predicate, predicateType, annotations, recursive };
}

function requirePredicateFile(predicate: string): void {
  if (!predicate) throw new UserError("Input 'predicate' is required for command 'attest'.");
  let st: fs.Stats;
  try {
    st = fs.statSync(predicate);
  } catch {
    throw new UserError(`Input 'predicate': the file '${quote(predicate, 200)}' does not exist on the agent.`);
  }
  // An empty filePath input arrives as the sources folder: refuse folders by name.
  if (!st.isFile()) throw new UserError(`Input 'predicate': '${quote(predicate, 200)}' is a folder, not a predicate file.`);
}

/** Where registry credentials come from, and the GC guard. */
function connectionSettings(v: CosignInputs): ConnectionSettings {
  const { registryConnection, doConnection, useDigitalOceanCredentials } = registryAccessFrom(v);
  const guard = guardSettingsFrom(v, { minutes: v.guardTimeoutMinutes, seconds: v.guardTimeoutSeconds }, 'fail');
  return { registryConnection, doConnection, useDigitalOceanCredentials, gcGuard: v.gcGuard, guard };
}

function retryBudget(v: CosignInputs): RetryBudget {
  const budget: RetryBudget = {
    maxAttempts: v.maxAttempts,
    attemptTimeoutSeconds: v.attemptTimeoutSeconds,
    initialBackoffSeconds: v.initialBackoffSeconds,
    maxBackoffSeconds: v.maxBackoffSeconds,
    totalTimeoutSeconds: v.totalTimeoutMinutes * 60,
  };
  if (budget.maxBackoffSeconds < budget.initialBackoffSeconds) {
    throw new UserError(
      `Input 'maxBackoffSeconds' (${budget.maxBackoffSeconds}) must not be smaller than 'initialBackoffSeconds' (${budget.initialBackoffSeconds}).`,
    );
  }
  return budget;
}

/** How each image is handled: resolution, skip and verify, the transparency log, the cosign binary. */
function runSettings(v: CosignInputs, signing: SigningSettings): RunSettings {
  const { resolveDigest, skipIfPresent, verifyAfter, tlogUpload, rekorUrl, allowInsecureRegistry, allowHttpRegistry, cosignPath } = v;
  if (signing.recursive && !resolveDigest) {
    throw new UserError("Input 'recursive' needs 'resolveDigest' to be true: platform manifests are taken from the index the registry returns.");
  }
  if (verifyAfter && !signing.publicKey && !signing.keyVault) throw new UserError("Input 'verifyAfter' is true, but 'publicKey' is empty.");
  if (signing.keyVault && tlogUpload && isWriteCommand(signing.command)) {
    throw new UserError(
      "Input 'tlogUpload': with 'keyVaultKey' the signature is not uploaded to the transparency log (not supported yet); set tlogUpload to false (verify with --insecure-ignore-tlog).",
    );
  }
  if (rekorUrl) requireHttpUrl('rekorUrl', rekorUrl);
  const extraArgs = splitArguments(v.arguments);
  for (const a of extraArgs) {
    if (/^--?(registry-password|registry-token|identity-token)(=|$)/.test(a)) {
      throw new UserError(`Input 'arguments' must not carry credentials (${a.split('=')[0]}): use a service connection, so they stay out of the command line.`);
    }
  }
  return { resolveDigest, skipIfPresent, verifyAfter, tlogUpload, rekorUrl, allowInsecureRegistry, allowHttpRegistry, cosignPath, extraArgs };
}

export function cosignSettingsFrom(v: CosignInputs): CosignTaskSettings {
  const signing = signingSettings(v);
  const connections = connectionSettings(v);
  const budget = retryBudget(v);
  const run = runSettings(v, signing);
  // Last of the checks, still before any work: the retry budget must fit its total.
  assertBudget(budget, 'totalTimeoutMinutes');
  return { ...signing, ...connections, budget, parallelism: v.parallelism, ...run };
}

import * as fs from 'fs';
import { UserError } from '../platform/errors';
import { readBool, readInt, readLines, readPick, readSecret, readString, requireHttpUrl } from '../platform/inputs';
import { quote } from '../platform/output';
import { RetryBudget, assertBudget } from '../platform/retry';
import { COSIGN_COMMANDS, CosignCommand, isWriteCommand, splitArguments } from '../tools/cosign';
import { ImageReference, parseImageReference } from '../services/oci';
import { DoConnection, readDoConnection } from '../services/digitalocean';
import { GuardSettings, readGuardSettings } from './guard';
import { RegistryConnection, readDockerRegistryConnection } from '../services/credentials';

/**
 * Every Cosign@1 input, read and checked before any network request or child
 * process (contract: "Inputs are checked before any network call or child process").
 */
export interface CosignTaskSettings {
  command: CosignCommand;
  images: ImageReference[];
  key: string;
  keyPassword: string;
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
  'command' | 'images' | 'key' | 'keyPassword' | 'publicKey' | 'predicate' | 'predicateType' | 'annotations' | 'recursive'
>;
type ConnectionSettings = Pick<CosignTaskSettings, 'registryConnection' | 'doConnection' | 'useDigitalOceanCredentials' | 'gcGuard' | 'guard'>;
type RunSettings = Pick<
  CosignTaskSettings,
  'resolveDigest' | 'skipIfPresent' | 'verifyAfter' | 'tlogUpload' | 'rekorUrl' | 'allowInsecureRegistry' | 'allowHttpRegistry' | 'cosignPath' | 'extraArgs'
>;

/** What cosign runs on and with: the command, the images, keys, predicate and annotations. */
function readSigningSettings(): SigningSettings {
  const command = readPick('command', COSIGN_COMMANDS, 'attest');
  const imageLines = readLines('images');
  if (imageLines.length === 0) throw new UserError("Input 'images' is required and was empty.");
  const images = imageLines.map((l) => parseImageReference(l, 'images'));
  const key = readString('key');
  if (isWriteCommand(command)) {
    if (!key) throw new UserError(`Input 'key' is required for command '${command}'.`);
    requireKeyFile('key', key);
  }
  const keyPassword = readSecret('keyPassword');
  const publicKey = readString('publicKey');
  if (!isWriteCommand(command) && !publicKey) throw new UserError(`Input 'publicKey' is required for command '${command}'.`);
  if (publicKey) requireKeyFile('publicKey', publicKey);
  const predicate = readString('predicate');
  if (command === 'attest') requirePredicateFile(predicate);
  const predicateType = readString('predicateType', { default: 'custom' }) || 'custom';
  if (/\s/.test(predicateType)) throw new UserError(`Input 'predicateType' must not contain spaces, got '${quote(predicateType)}'.`);
  const annotations = readLines('annotations');
  for (const a of annotations) {
    if (!/^[^=\s]+=.*$/.test(a)) throw new UserError(`Input 'annotations': each line must be key=value, got '${quote(a)}'.`);
  }
  if (annotations.length > 0 && (command === 'attest' || command === 'verify-attestation')) {
    throw new UserError(`Input 'annotations' applies to 'sign' and 'verify' only (cosign ${command} has no annotations).`);
  }
  const recursive = readBool('recursive', false);
  return { command, images, key, keyPassword, publicKey, predicate, predicateType, annotations, recursive };
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
function readConnectionSettings(): ConnectionSettings {
  const registryConnection = readDockerRegistryConnection('dockerRegistryConnection');
  const doConnection = readDoConnection('digitalOceanConnection', false);
  const useDigitalOceanCredentials = readBool('useDigitalOceanCredentials', false);
  if (useDigitalOceanCredentials && !doConnection) {
    throw new UserError("Input 'useDigitalOceanCredentials' is true, but no 'digitalOceanConnection' (or DIGITALOCEAN_ACCESS_TOKEN) is given.");
  }
  if (useDigitalOceanCredentials && registryConnection) {
    throw new UserError("Inputs 'useDigitalOceanCredentials' and 'dockerRegistryConnection' are exclusive: choose one source of registry credentials.");
  }
  const gcGuard = readBool('gcGuard', true);
  const guard = readGuardSettings('guardTimeoutMinutes', 30);
  return { registryConnection, doConnection, useDigitalOceanCredentials, gcGuard, guard };
}

function readRetryBudget(): RetryBudget {
  const budget: RetryBudget = {
    maxAttempts: readInt('maxAttempts', 5, 1, 100),
    attemptTimeoutSeconds: readInt('attemptTimeoutSeconds', 180, 1, 86_400),
    initialBackoffSeconds: readInt('initialBackoffSeconds', 5, 0, 3600),
    maxBackoffSeconds: readInt('maxBackoffSeconds', 60, 0, 3600),
    totalTimeoutSeconds: readInt('totalTimeoutMinutes', 20, 1, 1440) * 60,
  };
  if (budget.maxBackoffSeconds < budget.initialBackoffSeconds) {
    throw new UserError(
      `Input 'maxBackoffSeconds' (${budget.maxBackoffSeconds}) must not be smaller than 'initialBackoffSeconds' (${budget.initialBackoffSeconds}).`,
    );
  }
  return budget;
}

/** How each image is handled: resolution, skip and verify, the transparency log, the cosign binary. */
function readRunSettings(signing: SigningSettings): RunSettings {
  const resolveDigest = readBool('resolveDigest', true);
  if (signing.recursive && !resolveDigest) {
    throw new UserError("Input 'recursive' needs 'resolveDigest' to be true: platform manifests are taken from the index the registry returns.");
  }
  const skipIfPresent = readBool('skipIfPresent', true);
  const verifyAfter = readBool('verifyAfter', false);
  if (verifyAfter && !signing.publicKey) throw new UserError("Input 'verifyAfter' is true, but 'publicKey' is empty.");
  const tlogUpload = readBool('tlogUpload', true);
  const rekorUrl = readString('rekorUrl');
  if (rekorUrl) requireHttpUrl('rekorUrl', rekorUrl);
  const allowInsecureRegistry = readBool('allowInsecureRegistry', false);
  const allowHttpRegistry = readBool('allowHttpRegistry', false);
  const cosignPath = readString('cosignPath');
  const extraArgs = splitArguments(readString('arguments'));
  for (const a of extraArgs) {
    if (/^--?(registry-password|registry-token|identity-token)(=|$)/.test(a)) {
      throw new UserError(`Input 'arguments' must not carry credentials (${a.split('=')[0]}): use a service connection, so they stay out of the command line.`);
    }
  }
  return { resolveDigest, skipIfPresent, verifyAfter, tlogUpload, rekorUrl, allowInsecureRegistry, allowHttpRegistry, cosignPath, extraArgs };
}

export function readCosignSettings(): CosignTaskSettings {
  const signing = readSigningSettings();
  const connections = readConnectionSettings();
  const budget = readRetryBudget();
  const run = readRunSettings(signing);
  // Last of the checks, still before any work: the retry budget must fit its total.
  assertBudget(budget, 'totalTimeoutMinutes');
  return { ...signing, ...connections, budget, ...run };
}

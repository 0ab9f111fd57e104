// Signing through Azure Key Vault (keyVaultKey): the private key never leaves Key Vault, and the
// cosign builds this task runs (any 2.x or 3.x, with or without a KMS provider) only attach and
// verify. For `sign`, `cosign generate` prints the simple-signing payload of the manifest, Key Vault
// signs its SHA-256, and `cosign attach signature` attaches payload and signature. For `attest`, the
// task writes the in-toto statement (subject: the manifest's digest) as cosign would, Key Vault signs
// the DSSE pre-authentication encoding, and `cosign attach attestation` attaches the envelope. Every
// signature is verified with the key's public half before it is attached; the public key (PEM) is the
// one file `cosign verify --key` needs. Files live in one private folder removed on every exit path.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from '../../platform/errors';
import { onExit } from '../../platform/task';
import { AzureTokenSource, KeyVaultClient, KeyVaultPublicKey, describeKey } from '../../services/azure';
import { Logger, quote } from '../../platform/output';
import { CosignRun, ImageWork, Target } from './context';
import { CosignTaskSettings } from './settings';
import { PREDICATE_TYPE_URIS } from './keyvault-settings';
import { CosignRunner, logAttempt } from './runner';
import { agentTempDirectory } from '../../platform/agent';

export const DSSE_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT = 'https://in-toto.io/Statement/v0.1';

export interface KeyVaultSigning {
  client: KeyVaultClient;
  pub: KeyVaultPublicKey;
  /** The public key's PEM file (for skipIfPresent, verifyAfter and verify). */
  publicKeyFile: string;
  /** The predicate as the statement carries it (attest). */
  predicate?: unknown;
  predicateTypeUri: string;
  dir: string;
  /** vault/name/version, as the log and summary name the key. */
  described: string;
  /** sha256 of the public key (SPKI DER), hex. */
  fingerprint: string;
  remove(): void;
}

/** The DSSE pre-authentication encoding: "DSSEv1 <len> <type> <len> <payload>" (lengths in bytes). */
export function dssePae(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `), payload]);
}

/** The predicate the statement carries: the file's JSON, or for `custom` cosign's {Data, Timestamp} wrapper. */
function readPredicate(file: string, type: string): unknown {
  const text = fs.readFileSync(file, 'utf8');
  if (type === 'custom') return { Data: text, Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UserError(`Input 'predicate': '${quote(file, 200)}' is not JSON, which predicateType '${quote(type)}' needs.`);
  }
}

function privateDir(): { dir: string; remove(): void } {
  const root = agentTempDirectory() || os.tmpdir();
  const dir = fs.mkdtempSync(path.join(root, 'cosign-keyvault-'));
  fs.chmodSync(dir, 0o700);
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const unregister = onExit(remove);
  return {
    dir,
    remove: () => {
      unregister();
      remove();
    },
  };
}

/** The Key Vault key read and checked (EC P-256, enabled, may sign), its public key written, before any image is touched. */
export async function prepareKeyVault(s: CosignTaskSettings, log: Logger, signal: AbortSignal): Promise<KeyVaultSigning> {
  const kv = s.keyVault!;
  const predicateTypeUri = PREDICATE_TYPE_URIS[s.predicateType] ?? s.predicateType;
  const predicate = s.command === 'attest' ? readPredicate(s.predicate, s.predicateType) : undefined;
  const c = kv.connection;
  log.info(
    `Key Vault: key ${describeKey(kv.ref)} through service connection ${quote(c.id, 60)} (workload identity federation, tenant ${c.tenantId}, authority ${c.authorityHost}).`,
  );
  const client = new KeyVaultClient(kv.ref, new AzureTokenSource(c), {
    budget: s.budget,
    signal,
    onFailure: (what, r) => logAttempt(log.info, `Key Vault ${what}`, r),
  });
  const pub = await client.publicKey();
  const folder = privateDir();
  const publicKeyFile = path.join(folder.dir, 'keyvault.pub');
  fs.writeFileSync(publicKeyFile, pub.pem, { mode: 0o644 });
  const described = describeKey(kv.ref, pub.version);
  const fingerprint = crypto
    .createHash('sha256')
    .update(pub.key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
  log.info(`Key Vault key ${described}: EC P-256, public key sha256:${fingerprint} (output publicKey).`);
  return { client, pub, publicKeyFile, predicate, predicateTypeUri, dir: folder.dir, described, fingerprint, remove: folder.remove };
}

function registryFlags(run: CosignRun): string[] {
  const flags: string[] = [];
  if (run.s.allowHttpRegistry) flags.push('--allow-http-registry=true');
  if (run.s.allowInsecureRegistry) flags.push('--allow-insecure-registry=true');
  return flags;
}

/** A file in the private folder, unique per target and attempt. */
function writeFile(kv: KeyVaultSigning, stem: string, content: string | Buffer): string {
  const file = path.join(kv.dir, `${stem}-${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** cosign's payload for the manifest, checked to name exactly that digest. */
async function signingPayload(run: CosignRun, runner: CosignRunner, work: ImageWork, t: Target): Promise<{ payload: Buffer; attempts: number }> {
  const argv = ['generate', ...run.s.annotations.map((a) => `--annotations=${a}`), ...registryFlags(run), '--', t.pinned];
  const r = await runner.runArgv(work, 'generate', 'sign', argv, t, true);
  const text = r.outcome.stdout.replace(/\r?\n$/, '');
  const digest = t.pinned.slice(t.pinned.indexOf('@') + 1);
  let parsed: { critical?: { image?: Record<string, unknown>; type?: unknown } };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new UserError(`cosign generate printed no signing payload for ${t.pinned}.`);
  }
  if (parsed.critical?.image?.['docker-manifest-digest'] !== digest || parsed.critical?.type !== 'cosign container image signature') {
    throw new UserError(`cosign generate printed a payload for another manifest than ${t.pinned}: nothing was signed.`);
  }
  return { payload: Buffer.from(text, 'utf8'), attempts: r.attempts };
}

/** The in-toto statement of the manifest, as cosign attest writes it. */
function statement(kv: KeyVaultSigning, t: Target): Buffer {
  const digest = t.pinned.slice(t.pinned.indexOf('@') + 1);
  const subject = [{ name: t.pinned.slice(0, t.pinned.indexOf('@')), digest: { sha256: digest.replace(/^sha256:/, '') } }];
  return Buffer.from(JSON.stringify({ _type: IN_TOTO_STATEMENT, predicateType: kv.predicateTypeUri, subject, predicate: kv.predicate }), 'utf8');
}

/** One manifest signed (sign) or attested (attest) through Key Vault and attached by cosign; the attempts of its cosign steps. */
export async function keyVaultWrite(run: CosignRun, runner: CosignRunner, work: ImageWork, t: Target): Promise<number> {
  const kv = run.keyVault!;
  if (!/@sha256:[a-f0-9]{64}$/.test(t.pinned)) {
    throw new UserError(`keyVaultKey signs manifests by digest only: ${t.pinned} is a tag (set resolveDigest to true).`);
  }
  if (run.s.command === 'sign') {
    const { payload, attempts } = await signingPayload(run, runner, work, t);
    const der = await kv.client.sign(payload);
    const payloadFile = writeFile(kv, 'payload', payload);
    const signatureFile = writeFile(kv, 'signature', der.toString('base64'));
    const argv = ['attach', 'signature', `--payload=${payloadFile}`, `--signature=${signatureFile}`, ...registryFlags(run), '--', t.pinned];
    const r = await runner.runArgv(work, 'attach signature', 'sign', argv, t, false);
    work.log.info(`Key Vault ${kv.described} signed ${t.pinned}.`);
    return Math.max(attempts, r.attempts);
  }
  const body = statement(kv, t);
  const der = await kv.client.sign(dssePae(DSSE_PAYLOAD_TYPE, body));
  const envelope = { payloadType: DSSE_PAYLOAD_TYPE, payload: body.toString('base64'), signatures: [{ keyid: '', sig: der.toString('base64') }] };
  const envelopeFile = writeFile(kv, 'attestation', JSON.stringify(envelope));
  const argv = ['attach', 'attestation', `--attestation=${envelopeFile}`, ...registryFlags(run), '--', t.pinned];
  const r = await runner.runArgv(work, 'attach attestation', 'attest', argv, t, false);
  work.log.info(`Key Vault ${kv.described} signed the ${kv.predicateTypeUri} attestation of ${t.pinned}.`);
  return r.attempts;
}

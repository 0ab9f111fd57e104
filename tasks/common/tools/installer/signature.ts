// A cosign release's own signature, verified offline: the keyless Sigstore bundle cosign 3.0.1 and
// later publish beside each asset (<asset>.sigstore.json), checked with @sigstore/verify against a
// trusted root held by the task (certificate chain and its SCT, transparency-log inclusion and
// signed time, the signature over the binary, then the signer's identity and issuer); and for
// cosign 2.0.0 to 3.0.0, which publish no bundle, the detached <asset>.sig made with cosign's
// release key, checked against that key as the task ships it.
import * as crypto from 'crypto';
import * as fs from 'fs';
import type { Bundle, MessageSignature } from '@sigstore/bundle';
import type { TrustMaterial, VerificationError } from '@sigstore/verify';
import publicGood from '../../data/sigstore-public-good.json';
import releaseKey from '../../data/cosign-release-key.json';
import { UserError, errorMessage } from '../../platform/errors';
import { quote } from '../../platform/output';
import { versionBefore } from './release';

/** The identity cosign's release workflow signs with (sigstore/cosign-installer's action.yml verifies the same). */
export const COSIGN_RELEASE_IDENTITY = 'keyless@projectsigstore.iam.gserviceaccount.com';
export const COSIGN_RELEASE_ISSUER = 'https://accounts.google.com';
/** verifiedBy's identity for a signature made with cosign's release key. */
export const RELEASE_KEY_IDENTITY = 'cosign-release-key';
/** A trusted_root.json is a few KiB; anything far larger is not one. */
const TRUSTED_ROOT_LIMIT = 4 << 20;

/** sigstore-js, loaded on first use: an install pinned by its checksum never pays for its start-up. */
interface SigstoreLibs {
  verify: typeof import('@sigstore/verify');
  bundle: typeof import('@sigstore/bundle');
  specs: typeof import('@sigstore/protobuf-specs');
}
let libs: Promise<SigstoreLibs> | undefined;
function sigstore(): Promise<SigstoreLibs> {
  libs ??= Promise.all([import('@sigstore/verify'), import('@sigstore/bundle'), import('@sigstore/protobuf-specs')]).then(([verify, bundle, specs]) => ({
    verify,
    bundle,
    specs,
  }));
  return libs;
}

/** An identity or issuer in a message: long enough for a workflow identity URL. */
function named(value: string): string {
  return quote(value, 300);
}

/** The truth a release signature is checked against: a trusted root, and who must have signed. */
export interface TrustPolicy {
  /** The trusted root's JSON, parsed into trust material on first use (`trustMaterial`). */
  rootJson: unknown;
  material?: TrustMaterial;
  /** How messages name the root: the shipped public-good root, or the trustedRoot file. */
  rootName: string;
  identity: string;
  issuer: string;
}

/** A refused signature: the one reason, worded to follow "cosign <version> was not installed: ". */
export class SignatureRefusal extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'SignatureRefusal';
  }
}

function trustedRootJson(file: string): unknown {
  if (!file) return publicGood.trustedRoot;
  const named = `Input 'trustedRoot': '${quote(file, 200)}'`;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UserError(`${named} does not exist on the agent.`);
  }
  if (!st.isFile()) throw new UserError(`${named} is a folder, not a Sigstore trusted_root.json file.`);
  if (st.size > TRUSTED_ROOT_LIMIT) throw new UserError(`${named} is ${st.size} bytes, too large for a trusted_root.json (at most ${TRUSTED_ROOT_LIMIT}).`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserError(`${named} is not JSON (${quote(errorMessage(err))}).`);
  }
}

/** The policy's trust material (certificates and keys parsed once); throws when the root is not usable. */
async function trustMaterial(policy: TrustPolicy): Promise<TrustMaterial> {
  if (policy.material) return policy.material;
  const { verify, specs } = await sigstore();
  const parsed = specs.TrustedRoot.fromJSON(policy.rootJson);
  if (parsed.certificateAuthorities.length === 0 || parsed.tlogs.length === 0) throw new Error('it lists no certificate authority or no transparency log');
  policy.material = verify.toTrustMaterial(parsed);
  return policy.material;
}

/**
 * The trust policy from the inputs. A trustedRoot file that is not a usable root is refused here,
 * before any download; the shipped root is parsed when a signature is first verified.
 */
export async function trustPolicyFrom(trustedRootFile: string, identity: string, issuer: string): Promise<TrustPolicy> {
  for (const [name, value] of [
    ['certificateIdentity', identity],
    ['certificateOidcIssuer', issuer],
  ]) {
    if (!/^[\x21-\x7e]{1,256}$/.test(value)) {
      throw new UserError(`Input '${name}' must be one identity of printable characters without spaces (at most 256), got '${quote(value)}'.`);
    }
  }
  const rootName = trustedRootFile ? `the trusted root '${quote(trustedRootFile, 200)}'` : 'the Sigstore public-good trusted root shipped with the task';
  const policy: TrustPolicy = { rootJson: trustedRootJson(trustedRootFile), rootName, identity, issuer };
  if (trustedRootFile) {
    try {
      await trustMaterial(policy);
    } catch (err) {
      throw new UserError(`Input 'trustedRoot': ${rootName} is not a usable Sigstore trusted root (${quote(errorMessage(err))}).`);
    }
  }
  return policy;
}

export type SignatureFormat = 'bundle' | 'release-key';

/** A signature file a release publishes beside its asset. */
export interface SignatureFile {
  format: SignatureFormat;
  file: string;
}

/**
 * The signature files to look for, in order. Every version: the Sigstore bundle (cosign 3.0.1 on, or
 * a private mirror that re-signs). cosign 2.0.0 to 3.0.0 publish no bundle, only <asset>.sig made
 * with the release key (and a keyless .sig/.pem pair whose proof lives only in the online log);
 * that key stands in only while the identity asked for is cosign's own.
 */
export function signatureFiles(version: string, asset: string, policy: TrustPolicy): SignatureFile[] {
  const files: SignatureFile[] = [{ format: 'bundle', file: `${asset}.sigstore.json` }];
  const releaseKeyEra = !versionBefore(version, '2.0.0') && versionBefore(version, '3.0.1');
  const cosignOwn = policy.identity === COSIGN_RELEASE_IDENTITY && policy.issuer === COSIGN_RELEASE_ISSUER;
  if (releaseKeyEra && cosignOwn) files.push({ format: 'release-key', file: `${asset}.sig` });
  return files;
}

function parseBundle(bytes: Buffer, lib: SigstoreLibs): Bundle {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SignatureRefusal(`its Sigstore bundle is not JSON (${bytes.length} bytes)`);
  }
  try {
    return lib.bundle.bundleFromJSON(json);
  } catch (err) {
    throw new SignatureRefusal(`its Sigstore bundle is malformed (${quote(errorMessage(err))})`);
  }
}

/** What a VerificationError means for this install, in words. */
function describeFailure(err: VerificationError, policy: TrustPolicy): string {
  const detail = quote(err.message);
  switch (err.code) {
    case 'CERTIFICATE_ERROR':
      return `the bundle's certificate does not chain to a certificate authority of ${policy.rootName} valid when it was signed (${detail})`;
    case 'SIGNATURE_ERROR':
      return "the bundle's signature does not match the binary's bytes";
    case 'TIMESTAMP_ERROR':
      return `the bundle has no signed time to check its certificate at (${detail})`;
    case 'PUBLIC_KEY_ERROR':
      return `the bundle is signed by a key, not by a certificate for an identity (${detail})`;
    default:
      return `the bundle's transparency-log entry does not verify against ${policy.rootName} (${err.code}: ${detail})`;
  }
}

/** A bundle of a signature over a blob (not an attestation); throws SignatureRefusal otherwise. */
function blobBundle(bytes: Buffer, lib: SigstoreLibs): { bundle: Bundle; signature: MessageSignature } {
  const bundle = parseBundle(bytes, lib);
  if (bundle.content.$case !== 'messageSignature') throw new SignatureRefusal('its Sigstore bundle holds an attestation, not a signature over the binary');
  return { bundle, signature: bundle.content.messageSignature };
}

/** The base64 signature of a detached .sig file; throws SignatureRefusal when it is not one. */
function detachedSignature(bytes: Buffer): Buffer {
  const text = bytes.toString('utf8').trim();
  if (!/^[A-Za-z0-9+/]{16,}={0,2}$/.test(text)) throw new SignatureRefusal(`its signature file is not a base64 signature (${bytes.length} bytes)`);
  return Buffer.from(text, 'base64');
}

/** Refuses a signature file that is not of its format's shape, before the binary is downloaded. */
export async function checkSignatureShape(format: SignatureFormat, bytes: Buffer): Promise<void> {
  if (format === 'bundle') blobBundle(bytes, await sigstore());
  else detachedSignature(bytes);
}

/**
 * Checks `artifact` against a bundle; returns who signed it and the sha256 the bundle signs (which a
 * verified signature over `artifact` proves is the artifact's). `sha256`, when the caller hashed the
 * artifact already, is compared first: a binary other than the signed one is named as such.
 */
async function verifyBundle(bytes: Buffer, artifact: Buffer, sha256: string | undefined, policy: TrustPolicy): Promise<Verified> {
  const lib = await sigstore();
  const { verify } = lib;
  const { bundle, signature } = blobBundle(bytes, lib);
  const digest = signature.messageDigest;
  const signed = Buffer.from(digest.digest).toString('hex');
  if (digest.algorithm !== lib.specs.HashAlgorithm.SHA2_256 || (sha256 !== undefined && signed !== sha256)) {
    throw new SignatureRefusal(
      `its Sigstore bundle signs sha256 ${quote(signed, 64)}, but the downloaded binary has sha256 ${sha256} (the binary or its bundle was altered)`,
    );
  }
  const verifier = new verify.Verifier(await trustMaterial(policy), { tlogThreshold: 1, ctlogThreshold: 1, timestampThreshold: 1 });
  try {
    const entity = verify.toSignedEntity(bundle, artifact);
    verifier.verify(entity, { subjectAlternativeName: policy.identity, extensions: { issuer: policy.issuer } });
    return { identity: policy.identity, sha256: signed };
  } catch (err) {
    if (err instanceof verify.PolicyError) {
      const who = verifier.verify(verify.toSignedEntity(bundle, artifact)).identity;
      throw new SignatureRefusal(
        `it is signed by '${named(who?.subjectAlternativeName ?? 'no identity')}' (issuer '${named(who?.extensions?.issuer ?? 'none')}'), not by '${named(policy.identity)}' (issuer '${named(policy.issuer)}')`,
      );
    }
    if (err instanceof verify.VerificationError) throw new SignatureRefusal(describeFailure(err, policy));
    throw new SignatureRefusal(`its Sigstore bundle cannot be verified (${quote(errorMessage(err))})`);
  }
}

/** Checks `artifact` against a detached signature (base64 DER ECDSA over sha256, as cosign sign-blob writes it) by cosign's release key. */
function verifyReleaseKey(bytes: Buffer, artifact: Buffer, sha256: string | undefined): Verified {
  const ok = crypto.verify('sha256', artifact, releaseKey.pem, detachedSignature(bytes));
  if (!ok) throw new SignatureRefusal("its signature is not a signature of the downloaded binary by cosign's release key");
  return { identity: RELEASE_KEY_IDENTITY, sha256: sha256 ?? crypto.createHash('sha256').update(artifact).digest('hex') };
}

/** What a verified release signature proves: who signed, and the sha256 of the bytes it covers. */
export interface Verified {
  identity: string;
  sha256: string;
}

/**
 * Verifies a release signature over the binary's bytes (whose sha256 the caller may already know);
 * returns the identity for verifiedBy and the binary's sha256, or throws SignatureRefusal.
 */
export function verifyReleaseSignature(
  format: SignatureFormat,
  signature: Buffer,
  artifact: Buffer,
  sha256: string | undefined,
  policy: TrustPolicy,
): Promise<Verified> {
  return format === 'bundle' ? verifyBundle(signature, artifact, sha256, policy) : Promise.resolve().then(() => verifyReleaseKey(signature, artifact, sha256));
}

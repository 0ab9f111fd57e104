// A Sigstore of our own for the installer's tests: a test CA playing Fulcio (with a CT log that
// embeds an SCT in every certificate it issues), a transparency log with its own key (every entry
// comes with a signed entry timestamp and an inclusion proof under a signed checkpoint), and the
// trusted_root.json that names them. Built on @sigstore/mock's CA and logs, in process (no network).
// `signBlob` makes what `cosign sign-blob --bundle` publishes beside a release asset: a v0.3 bundle
// with the certificate, the hashedrekord entry and the signature over the artifact.
import * as crypto from 'crypto';
import { initializeCA, initializeCTLog, initializeTLog } from '@sigstore/mock';

const ISSUER_OID_V1 = '1.3.6.1.4.1.57264.1.1';
const ISSUER_OID_V2 = '1.3.6.1.4.1.57264.1.8';
export const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const RELEASE_IDENTITY = 'keyless@projectsigstore.iam.gserviceaccount.com';
export const RELEASE_ISSUER = 'https://accounts.google.com';

function p256(): { publicKey: crypto.KeyObject; privateKey: crypto.KeyObject } {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export interface SignOptions {
  identity?: string;
  issuer?: string;
}

export interface TestSigstore {
  /** The trusted_root.json naming this CA, CT log and transparency log; `caValidUntil` ends the CA's validity. */
  trustedRoot(options?: { caValidUntil?: Date }): string;
  /** A Sigstore bundle (JSON) of a keyless signature over `artifact`, as cosign sign-blob --bundle writes it. */
  signBlob(artifact: Buffer, options?: SignOptions): Promise<string>;
}

/** The entry @sigstore/mock's transparency log answers with (Rekor's LogEntry shape). */
interface MockEntry {
  body: string;
  integratedTime: number;
  logID: string;
  logIndex: number;
  verification: {
    signedEntryTimestamp: string;
    inclusionProof: { logIndex: number; rootHash: string; treeSize: number; hashes: string[]; checkpoint: string };
  };
}

const b64 = (b: Buffer | Uint8Array) => Buffer.from(b).toString('base64');
const keyId = (spki: Buffer) => b64(crypto.createHash('sha256').update(spki).digest());

/** A new test Sigstore: fresh keys for the CA, the CT log and the transparency log. */
export async function createTestSigstore(): Promise<TestSigstore> {
  const ctlog = await initializeCTLog(p256());
  const ca = await initializeCA(p256(), ctlog);
  const tlogKeys = p256();
  const tlog = await initializeTLog('https://rekor.test.invalid', tlogKeys);
  const start = new Date(Date.now() - 3600_000).toISOString();
  const tlogSpki = tlog.publicKey;
  const ctSpki = Buffer.from(ctlog.publicKey);

  const trustedRoot = (options: { caValidUntil?: Date } = {}) =>
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: 'https://rekor.test.invalid',
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: b64(tlogSpki), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
          logId: { keyId: keyId(tlogSpki) },
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
          uri: 'https://fulcio.test.invalid',
          certChain: { certificates: [{ rawBytes: b64(Buffer.from(ca.rootCertificate.buffer)) }] },
          validFor: { start, ...(options.caValidUntil ? { end: options.caValidUntil.toISOString() } : {}) },
        },
      ],
      ctlogs: [
        {
          baseUrl: 'https://ctfe.test.invalid',
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: b64(ctSpki), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
          logId: { keyId: b64(Buffer.from(ctlog.logID.buffer)) },
        },
      ],
      timestampAuthorities: [],
    });

  const signBlob = async (artifact: Buffer, options: SignOptions = {}) => {
    const identity = options.identity ?? RELEASE_IDENTITY;
    const issuer = options.issuer ?? RELEASE_ISSUER;
    const signer = p256();
    const spki = signer.publicKey.export({ format: 'der', type: 'spki' });
    const certDer = Buffer.from(
      (
        await ca.issueCertificate({
          publicKey: new Uint8Array(spki),
          subjectAltName: identity,
          extensions: [
            { oid: ISSUER_OID_V1, value: issuer, legacy: true },
            { oid: ISSUER_OID_V2, value: issuer },
          ],
        })
      ).buffer,
    );
    const signature = crypto.sign('sha256', artifact, signer.privateKey);
    const digest = crypto.createHash('sha256').update(artifact).digest();
    const certPem = `-----BEGIN CERTIFICATE-----\n${b64(certDer)
      .replace(/(.{64})/g, '$1\n')
      .trim()}\n-----END CERTIFICATE-----\n`;
    const entry = Object.values(
      await tlog.log({
        apiVersion: '0.0.1',
        kind: 'hashedrekord',
        spec: {
          data: { hash: { algorithm: 'sha256', value: digest.toString('hex') } },
          signature: { content: b64(signature), publicKey: { content: b64(Buffer.from(certPem)) } },
        },
      }),
    )[0] as MockEntry;
    const proof = entry.verification.inclusionProof;
    return JSON.stringify({
      mediaType: BUNDLE_V03,
      verificationMaterial: {
        certificate: { rawBytes: b64(certDer) },
        tlogEntries: [
          {
            logIndex: String(entry.logIndex),
            logId: { keyId: b64(Buffer.from(entry.logID, 'hex')) },
            kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
            integratedTime: String(entry.integratedTime),
            inclusionPromise: { signedEntryTimestamp: entry.verification.signedEntryTimestamp },
            inclusionProof: {
              logIndex: String(proof.logIndex),
              rootHash: b64(Buffer.from(proof.rootHash, 'hex')),
              treeSize: String(proof.treeSize),
              hashes: proof.hashes,
              checkpoint: { envelope: proof.checkpoint },
            },
            canonicalizedBody: entry.body,
          },
        ],
      },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: b64(digest) }, signature: b64(signature) },
    });
  };

  return { trustedRoot, signBlob };
}

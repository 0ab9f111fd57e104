// Certificates for local https servers (mirrors, hostile origins, a registry behind a corporate
// CA), made in-process: RSA keys from Node's crypto, X.509 certificates built and signed with
// node-forge (an npm package, so a fresh machine needs nothing else: no openssl binary).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import forge from 'node-forge';
import { tempDir } from './paths';

const DAY_MS = 86_400_000;

interface Made {
  keyPem: string;
  certPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

/** A random positive serial number (hex), as CAs issue them. */
function serial(): string {
  return '01' + crypto.randomBytes(15).toString('hex');
}

/**
 * One certificate for `subjectCn`, signed by `issuer` (self-signed without one). Valid from a day
 * ago for two days, so a clock a little off does not make it "not yet valid".
 */
function makeCert(subjectCn: string, extensions: object[], issuer?: Made): Made {
  const pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - DAY_MS);
  cert.validity.notAfter = new Date(Date.now() + 2 * DAY_MS);
  const subject = [{ name: 'commonName', value: subjectCn }];
  cert.setSubject(subject);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : subject);
  cert.setExtensions(extensions);
  cert.sign(issuer ? issuer.key : key, forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert), cert, key };
}

/** Subject alternative names: DNS names and 127.0.0.1 as an IP. */
function altNames(names: string[]): object {
  return { name: 'subjectAltName', altNames: [...names.map((value) => ({ type: 2, value })), { type: 7, ip: '127.0.0.1' }] };
}

/** A self-signed certificate for 127.0.0.1. */
export function selfSignedCert(): { key: string; cert: string; certFile: string; dir: string } {
  const dir = tempDir('tls');
  const made = makeCert('127.0.0.1', [{ name: 'basicConstraints', cA: false }, { name: 'extKeyUsage', serverAuth: true }, altNames([])]);
  const certFile = path.join(dir, 'cert.pem');
  fs.writeFileSync(path.join(dir, 'key.pem'), made.keyPem, { mode: 0o600 });
  fs.writeFileSync(certFile, made.certPem);
  return { key: made.keyPem, cert: made.certPem, certFile, dir };
}

export interface TestCa {
  /** The CA's certificate (PEM), the file to give as Agent.CAInfo. */
  caFile: string;
  caPem: string;
  /** A leaf signed by the CA for `names` (DNS names, and 127.0.0.1 as an IP). */
  certFile: string;
  keyFile: string;
  dir: string;
}

/** A test CA and a leaf it signs for `names` and 127.0.0.1: what a registry behind a corporate CA looks like. */
export function testCaAndLeaf(names: string[]): TestCa {
  const dir = tempDir('tls-ca');
  const f = (n: string) => path.join(dir, n);
  const ca = makeCert('Cosign GC Guard test CA', [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  const leaf = makeCert(
    names[0] ?? '127.0.0.1',
    [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      altNames(names),
    ],
    ca,
  );
  fs.writeFileSync(f('ca.key'), ca.keyPem, { mode: 0o600 });
  fs.writeFileSync(f('ca.pem'), ca.certPem);
  fs.writeFileSync(f('leaf.key'), leaf.keyPem, { mode: 0o600 });
  fs.writeFileSync(f('leaf.pem'), leaf.certPem);
  return { caFile: f('ca.pem'), caPem: ca.certPem, certFile: f('leaf.pem'), keyFile: f('leaf.key'), dir };
}

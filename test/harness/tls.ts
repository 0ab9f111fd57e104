// A self-signed certificate for a local https server (mirrors, hostile origins). Node's crypto
// cannot make certificates, so this needs openssl; callers skip their https cases without it.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir } from './paths';

/** A self-signed certificate for 127.0.0.1 made by openssl, or undefined when openssl is missing. */
export function selfSignedCert(): { key: string; cert: string; certFile: string; dir: string } | undefined {
  const dir = tempDir('tls');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
  } catch {
    return undefined;
  }
  return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8'), certFile, dir };
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

/**
 * A test CA and a leaf it signs for `names` and 127.0.0.1, made by openssl (undefined without it):
 * what a registry behind a corporate CA looks like to the tasks and to cosign.
 */
export function testCaAndLeaf(names: string[]): TestCa | undefined {
  const dir = tempDir('tls-ca');
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  try {
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=Cosign GC Guard test CA']);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', `/CN=${names[0]}`]);
    const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
    fs.writeFileSync(f('leaf.ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
    ssl([
      'x509',
      '-req',
      '-in',
      f('leaf.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f('leaf.pem'),
      '-days',
      '2',
      '-extfile',
      f('leaf.ext'),
    ]);
  } catch {
    return undefined;
  }
  return { caFile: f('ca.pem'), caPem: fs.readFileSync(f('ca.pem'), 'utf8'), certFile: f('leaf.pem'), keyFile: f('leaf.key'), dir };
}

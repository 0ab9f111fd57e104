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

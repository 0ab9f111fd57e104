import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir, tools } from './paths';

export interface KeyPair {
  dir: string;
  key: string;
  pub: string;
  password: string;
}

/** A fresh cosign key pair made by the real `cosign generate-key-pair` (password via COSIGN_PASSWORD only). */
export function generateKeyPair(password = `pw-${Math.random().toString(36).slice(2)}-secret`, cosign = tools.cosign3): Promise<KeyPair> {
  const dir = tempDir('keys');
  return new Promise((resolve, reject) => {
    execFile(cosign, ['generate-key-pair'], { cwd: dir, env: { ...process.env, COSIGN_PASSWORD: password } }, (err, _out, stderr) => {
      if (err) return reject(new Error(`cosign generate-key-pair failed: ${stderr || err.message}`));
      const key = path.join(dir, 'cosign.key');
      const pub = path.join(dir, 'cosign.pub');
      if (!fs.existsSync(key) || !fs.existsSync(pub)) return reject(new Error('cosign generate-key-pair wrote no key files'));
      resolve({ dir, key, pub, password });
    });
  });
}

/** A predicate file for attest. */
export function writePredicate(dir: string, body: unknown = { promotedTo: 'staging', at: new Date().toISOString() }): string {
  const file = path.join(dir, `predicate-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(body));
  return file;
}

import { spawn, execFile, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import { tempDir, tools } from './paths';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RealRegistry {
  host: string; // 127.0.0.1:PORT
  url: string; // http://127.0.0.1:PORT
  dir: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /**
   * storage.delete.enabled: DELETE /v2/<name>/manifests/<digest> works (202). Default true, as this
   * harness has always started it; false gives a registry that answers such a DELETE 405 UNSUPPORTED.
   */
  deleteEnabled?: boolean;
  /** Serve https with this certificate and key (PEM files): http.tls in the registry's config. */
  tls?: { certificate: string; key: string };
}

/** Starts the real CNCF distribution registry on loopback with its own storage. */
export async function startRegistry(options: RegistryOptions = {}): Promise<RealRegistry> {
  const port = await freePort();
  const dir = tempDir('registry');
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      `    enabled: ${options.deleteEnabled ?? true}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(options.tls ? ['  tls:', `    certificate: ${options.tls.certificate}`, `    key: ${options.tls.key}`] : []),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(tools.registry, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d.toString()));
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await registryAnswers(url, Boolean(options.tls))) === 200) break;
    } catch {
      /* not up yet */
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`registry did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** GET /v2/ (over https without checking the certificate: this only asks whether it is up); the status. */
function registryAnswers(url: string, tls: boolean): Promise<number> {
  if (!tls) return fetch(`${url}/v2/`).then((r) => r.status);
  return new Promise((resolve, reject) => {
    const req = https.get(`${url}/v2/`, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

export function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Pushes a tiny single-layer image with crane; returns the digest the registry reports. */
export async function pushTinyImage(
  host: string,
  repoTag: string,
  content = `hello ${Date.now()} ${Math.random()}`,
  env: Record<string, string> = {},
): Promise<string> {
  const dir = tempDir('img');
  try {
    const file = path.join(dir, 'hello.txt');
    fs.writeFileSync(file, content);
    const tar = path.join(dir, 'layer.tar');
    await run('tar', ['-cf', tar, '-C', dir, 'hello.txt']);
    const ref = `${host}/${repoTag}`;
    await run(tools.crane, ['append', '-f', tar, '-t', ref, '--insecure'], env);
    const { stdout } = await run(tools.crane, ['digest', ref, '--insecure'], env);
    return stdout.trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Pushes `n` tiny images as `<repo>:0` … `<repo>:<n-1>` to `upstreamHost`; returns them as a client
 * names them through `seenAs` (the emulator's front, say): by tag, and by the digest the registry reports.
 */
export async function pushTinyImages(upstreamHost: string, repo: string, n: number, seenAs = upstreamHost): Promise<{ refs: string[]; pinned: string[] }> {
  const refs: string[] = [];
  const pinned: string[] = [];
  for (let i = 0; i < n; i++) {
    const digest = await pushTinyImage(upstreamHost, `${repo}:${i}`);
    refs.push(`${seenAs}/${repo}:${i}`);
    pinned.push(`${seenAs}/${repo}@${digest}`);
  }
  return { refs, pinned };
}

/**
 * A repository with `n` tags, each on its own manifest: one tiny image pushed with crane, then its
 * manifest PUT again `n` times with a distinct annotation (no new blobs), a few requests at a time.
 * Tags are `<prefix>0000` … in sort order; returns tag → the digest the registry reports.
 */
export async function pushManyTags(host: string, repo: string, n: number, prefix = 't'): Promise<Map<string, string>> {
  const base = `${prefix}-base`;
  await pushTinyImage(host, `${repo}:${base}`);
  const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${base}`, { headers: { accept } });
  const contentType = res.headers.get('content-type') ?? 'application/vnd.oci.image.manifest.v1+json';
  const manifest = (await res.json()) as Record<string, unknown>;
  const width = String(n - 1).length;
  const out = new Map<string, string>();
  const tags = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(Math.max(4, width), '0')}`);
  const put = async (tag: string) => {
    const body = JSON.stringify({ ...manifest, annotations: { 'org.example.tag': tag } });
    const r = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': contentType }, body });
    await r.arrayBuffer();
    if (r.status !== 201) throw new Error(`PUT ${repo}:${tag} answered ${r.status}`);
    out.set(tag, r.headers.get('docker-content-digest') ?? '');
  };
  for (let i = 0; i < tags.length; i += 16) await Promise.all(tags.slice(i, i + 16).map(put));
  return out;
}

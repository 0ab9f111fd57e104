// Hostile surface 4: the download mirror CosignInstaller@1 fetches from (downloadBaseUrl:
// /v<version>/cosign-linux-amd64 and its Sigstore bundle /v<version>/cosign-linux-amd64.sigstore.json),
// and the agent's tool cache. Version 9.9.9 is outside the task's checksum table (the release signature,
// checked against a test Sigstore's trusted root given as trustedRoot, or the `checksum` input decide);
// the cache cases use 3.0.6, which the table pins.
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { Agent, HEADER_INJECTION, agent, agentProxy, b64, inj, randomSecret } from './env';
import { sha256 } from '../harness/mirror';
import { tempDir } from '../harness/paths';
import { createTestSigstore } from '../harness/sigstore';
import { HostileCase, table } from './properties';
import { runInstaller } from './runners';
import {
  Handler,
  Hostile,
  SeenRequest,
  htmlPage,
  selfSignedCert,
  sendEndless,
  sendHeadersThenStall,
  sendHuge,
  sendJson,
  sendRaw,
  sendRedirectLoop,
  sendTrickle,
  neverAnswersCase,
  startHttp,
} from './servers';

const VERSION = '9.9.9';
const ASSET = 'cosign-linux-amd64';
/** A small executable standing in for the cosign release binary (`cosign version --json`). */
const STUB = Buffer.from(`#!/bin/sh\necho '{"gitVersion":"v${VERSION}","gitCommit":"hostile"}'\n`);
const stubSaying = (v: string) =>
  Buffer.from(`#!/bin/sh\necho '{"gitVersion":"${v}"}'\necho '##vso[task.setvariable variable=pwned]1'\necho '##vso[task.uploadfile]/etc/passwd' >&2\n`);
const LOUD = stubSaying(`v${VERSION}${inj(5).text}`);

/** The test Sigstore's trusted root (a file, given as trustedRoot) and its bundles of STUB and LOUD, made once. */
interface Signed {
  root: string;
  stub: string;
  loud: string;
}
let signed: Signed | undefined;
let signing: Promise<Signed> | undefined;
function sign(): Promise<Signed> {
  signing ??= (async () => {
    const sigstore = await createTestSigstore();
    const root = path.join(tempDir('hostile-root'), 'trusted_root.json');
    fs.writeFileSync(root, sigstore.trustedRoot());
    signed = { root, stub: await sigstore.signBlob(STUB), loud: await sigstore.signBlob(LOUD) };
    return signed;
  })();
  return signing;
}
after(() => {
  if (signed) fs.rmSync(path.dirname(signed.root), { recursive: true, force: true });
});

type Route = 'binary' | 'bundle' | 'other';

function routeOf(seen: SeenRequest): Route {
  const p = new URL(seen.path, 'http://x').pathname;
  if (p === `/v${VERSION}/${ASSET}`) return 'binary';
  if (p === `/v${VERSION}/${ASSET}.sigstore.json`) return 'bundle';
  return 'other';
}

function polite(route: Route, res: http.ServerResponse): void {
  if (route === 'binary') return sendRaw(res, 200, 'application/octet-stream', STUB);
  if (route === 'bundle') return sendRaw(res, 200, 'application/json', signed!.stub);
  sendRaw(res, 404, 'text/plain', 'Not Found');
}

async function mirror(over: Partial<Record<Route, Handler>>, tls?: { key: string; cert: string }): Promise<Hostile> {
  await sign();
  return startHttp((req, res, seen) => {
    const route = routeOf(seen);
    const h = over[route];
    if (h) h(req, res, seen);
    else polite(route, res);
  }, tls);
}

interface MirrorOpts {
  result?: 'any' | 'Failed';
  idle?: boolean;
  /** Pin the binary with the `checksum` input (no signature read). */
  pinned?: boolean;
  proxy?: 'forwarding' | 'closed';
}

function mirrorCase(name: string, classes: HostileCase['classes'], over: Partial<Record<Route, Handler>>, opts: MirrorOpts = {}): HostileCase {
  return {
    name,
    classes,
    idle: opts.idle,
    exec: async () => {
      const s = await mirror(over);
      const p = opts.proxy ? await agentProxy(opts.proxy) : undefined;
      const inputs: Record<string, string> = opts.pinned ? { checksum: sha256(STUB) } : { trustedRoot: signed!.root };
      return runInstaller(s.url, VERSION, { inputs, env: p?.env, secrets: p?.secrets, result: opts.result, cleanup: [s, ...(p?.proxy ? [p.proxy] : [])] });
    },
  };
}

const text =
  (body: string, status = 200, type = 'text/plain'): Handler =>
  (_q, r) =>
    sendRaw(r, status, type, body);

function commandCases(): HostileCase[] {
  return [
    mirrorCase(
      'bundle with command lines around its JSON',
      ['commands'],
      { bundle: (_q, r) => sendRaw(r, 200, 'application/json', `##vso[task.setvariable variable=pwned]1\n${signed!.stub}${inj(1).text}\r\n${inj(2).text}\n`) },
      { result: 'any' },
    ),
    mirrorCase(`bundle JSON whose fields carry commands ${inj(5).label}`, ['commands'], {
      bundle: (_q, r) =>
        sendJson(r, 200, { mediaType: `application/vnd.dev.sigstore.bundle.v0.3+json${inj(5).text}`, verificationMaterial: { x: inj(3).text } }),
    }),
    mirrorCase('bundle 500 whose body is commands', ['commands'], {
      bundle: text(`##vso[task.setvariable variable=pwned]1\n##vso[task.uploadfile]/etc/passwd\n`, 500),
    }),
    mirrorCase('bundle 404 with a Content-Type carrying a command', ['commands', 'content-type'], {
      bundle: text('Not Found', 404, `text/plain; x=${HEADER_INJECTION}`),
    }),
    mirrorCase(
      'downloaded (signed) binary prints commands when asked its version',
      ['commands'],
      {
        binary: (_q, r) => sendRaw(r, 200, 'application/octet-stream', LOUD),
        bundle: (_q, r) => sendRaw(r, 200, 'application/json', signed!.loud),
      },
      { result: 'any' },
    ),
  ];
}

function secretCases(): HostileCase[] {
  return [
    mirrorCase('agent proxy with credentials (forwarding proxy, polite mirror)', ['secrets'], {}, { result: 'any', proxy: 'forwarding' }),
    mirrorCase('agent proxy with credentials on a closed port', ['secrets', 'time'], {}, { proxy: 'closed', idle: true }),
    {
      name: 'credentials in downloadBaseUrl (refused before any request; the mirror would echo them in a 401)',
      classes: ['secrets'],
      exec: async () => {
        const echo: Handler = (_q, r, seen) => sendRaw(r, 401, 'text/plain', `bad credentials ${String(seen.headers['authorization'] ?? '')}`);
        const s = await mirror({ binary: echo, bundle: echo, other: echo });
        const password = randomSecret('mirror-pw-');
        const base = `http://mirroruser:${password}@${s.host}`;
        return runInstaller(base, VERSION, { secrets: [password, b64(`mirroruser:${password}`)], cleanup: [s] });
      },
    },
  ];
}

function sizeTimeCases(): HostileCase[] {
  return [
    mirrorCase('64 MiB bundle', ['size'], { bundle: (_q, r) => sendHuge(r, 200, 'application/json', `{"x":"${'0'.repeat(64)}"}\n`) }),
    mirrorCase('endless binary', ['size', 'time'], { binary: (_q, r) => sendEndless(r, 200, 'application/octet-stream', '') }, { pinned: true, idle: true }),
    mirrorCase(
      'binary trickles 1 byte a second',
      ['time'],
      { binary: (_q, r) => sendTrickle(r, 200, 'application/octet-stream', STUB.toString()) },
      { pinned: true, idle: true },
    ),
    mirrorCase('bundle trickles 1 byte a second', ['time'], { bundle: (_q, r) => sendTrickle(r, 200, 'application/json', signed!.stub) }, { idle: true }),
    mirrorCase(
      'binary headers, then nothing',
      ['time'],
      { binary: (_q, r) => sendHeadersThenStall(r, 200, 'application/octet-stream') },
      { pinned: true, idle: true },
    ),
    neverAnswersCase('mirror', (b) => runInstaller(b.url, VERSION, { inputs: { checksum: sha256(STUB) }, cleanup: [b] })),
  ];
}

function contentTypeCases(): HostileCase[] {
  return [
    mirrorCase('bundle as a text/html page', ['content-type'], { bundle: text(htmlPage(200, 'GitHub'), 200, 'text/html') }),
    mirrorCase('bundle 404 text/html page', ['content-type'], { bundle: text(htmlPage(404, 'Not Found'), 404, 'text/html') }),
    mirrorCase('binary is a text/html page', ['content-type'], { binary: text(htmlPage(200, 'Download'), 200, 'text/html') }, { pinned: true }),
    mirrorCase('binary is JSON error with 200', ['content-type'], { binary: (_q, r) => sendJson(r, 200, { message: 'rate limited' }) }, { pinned: true }),
  ];
}

function downgradeCase(): HostileCase {
  return {
    name: 'https origin redirects the binary to plain http',
    classes: ['redirects'],
    exec: async () => {
      const tls = selfSignedCert();
      const plain = await mirror({});
      const origin = await mirror(
        { binary: (_q, r) => (r.writeHead(302, { Location: `${plain.url}/v${VERSION}/${ASSET}`, 'Content-Length': 0 }), r.end()) },
        tls,
      );
      const served = () => (plain.requests.length > 0 ? `redirects: the http server was asked for ${plain.requests.map((q) => q.path).join(', ')}` : undefined);
      return runInstaller(origin.url, VERSION, {
        inputs: { checksum: sha256(STUB) },
        env: { AGENT_CAINFO: tls.certFile },
        cleanup: [origin, plain],
        extra: [served],
      });
    },
  };
}

function redirectCases(): HostileCase[] {
  return [
    mirrorCase('binary redirect loop', ['redirects'], { binary: (_q, r, seen) => sendRedirectLoop(r, seen) }, { pinned: true }),
    mirrorCase('bundle redirect loop', ['redirects'], { bundle: (_q, r, seen) => sendRedirectLoop(r, seen) }),
    downgradeCase(),
  ];
}

/** Seeds the tool cache entry of 3.0.6 with `write(binaryPath)` and a sidecar, then installs. */
function cacheCase(name: string, write: (bin: string) => string): HostileCase {
  return {
    name,
    classes: ['cache'],
    exec: async () => {
      const a: Agent = agent();
      const dir = path.join(a.tools, 'cosign', '3.0.6', 'x64');
      fs.mkdirSync(dir, { recursive: true });
      const sidecar = write(path.join(dir, 'cosign'));
      fs.writeFileSync(path.join(dir, 'cosign.sha256'), sidecar);
      fs.writeFileSync(`${dir}.complete`, '');
      const s = await mirror({ other: text('Not Found', 404) });
      const removed = () => (fs.existsSync(dir) || fs.existsSync(`${dir}.complete`) ? `cache: the altered entry ${dir} is still in the tool cache` : undefined);
      return runInstaller(s.url, '3.0.6', { agent: a, cleanup: [s], extra: [removed] });
    },
  };
}

/** An entry of 9.9.9 admitted by its signature (the bundle of STUB kept beside it) whose binary was then swapped; no pin. */
function signedCacheCase(): HostileCase {
  return {
    name: 'signed cache entry (bundle kept) whose binary was swapped for a command-printing one with a matching sidecar',
    classes: ['cache', 'commands'],
    exec: async () => {
      await sign();
      const a: Agent = agent();
      const dir = path.join(a.tools, 'cosign', VERSION, 'x64');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'cosign'), LOUD, { mode: 0o755 });
      fs.writeFileSync(path.join(dir, 'cosign.sha256'), `${sha256(LOUD)}\n`);
      fs.writeFileSync(path.join(dir, 'cosign.sigstore.json'), signed!.stub);
      fs.writeFileSync(`${dir}.complete`, '');
      const s = await mirror({});
      const removed = () => (fs.existsSync(dir) || fs.existsSync(`${dir}.complete`) ? `cache: the altered entry ${dir} is still in the tool cache` : undefined);
      const fetched = () => (s.requests.length > 0 ? `cache: the mirror was asked for ${s.requests.map((r) => r.path).join(', ')}` : undefined);
      return runInstaller(s.url, VERSION, { agent: a, inputs: { trustedRoot: signed!.root }, cleanup: [s], extra: [removed, fetched] });
    },
  };
}

function cacheCases(): HostileCase[] {
  return [
    signedCacheCase(),
    cacheCase('tampered cached binary with a matching sidecar and marker', (bin) => {
      fs.writeFileSync(bin, STUB, { mode: 0o755 });
      return `${sha256(STUB)}\n`;
    }),
    cacheCase('swapped cached binary (a symlink to /bin/true) with a matching sidecar', (bin) => {
      fs.symlinkSync('/bin/true', bin);
      return `${sha256(fs.readFileSync('/bin/true'))}\n`;
    }),
    cacheCase('tampered cached binary whose sidecar carries a command', (bin) => {
      fs.writeFileSync(bin, STUB, { mode: 0o755 });
      return `${sha256(STUB)}${inj(0).text}\n`;
    }),
  ];
}

table('mirror', [...commandCases(), ...secretCases(), ...sizeTimeCases(), ...contentTypeCases(), ...redirectCases(), ...cacheCases()]);

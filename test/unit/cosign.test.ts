// Unit tests of the library pieces Cosign@1 decides with: failure classes from real cosign stderr,
// flags per cosign generation (canned help text, and the real cosign 2.5 and 3.1 binaries probed),
// image references, argument splitting, docker config keys. No task runs here; the task under
// MockTestRunner is test/l0/cosign.test.ts.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  CosignOptions,
  FlagProbe,
  binaryFlagProbe,
  classifyCosignFailure,
  parseHelpFlags,
  planFlags,
  splitArguments,
  summarizeStderr,
} from '../../tasks/common/tools/cosign';
import { parseImageReference } from '../../tasks/common/services/oci';
import { addSecret, clean } from '../../tasks/common/platform/output';
import { configKey, decodeAuth, lookupFromAuths, normalizeRegistryHost } from '../../tasks/common/services/credentials';
import { hasSignaturePayload } from '../../tasks/common/workflows/cosign/job';
import { tempDir, tools } from '../harness/paths';

const IMG = 'registry.example.com/acme/app@sha256:' + 'a'.repeat(64);

// ------------------------------------------------------------------ classification

/** stderr samples: real cosign 2.5/3.1 output, and the texts the failures this extension was built for printed. */
const SAMPLES: Array<{ name: string; stderr: string; kind: string; reason: string; reguard?: boolean; command?: 'attest' | 'verify' }> = [
  {
    name: 'token exchange 401 during a GC (DO connection present)',
    stderr:
      'Error: signing registry.digitalocean.com/forma-3d/docs@sha256:abc: GET https://api.digitalocean.com/v2/registry/auth?scope=repository:forma-3d/docs:push,pull&service=registry.digitalocean.com: unexpected status code 401 Unauthorized',
    kind: 'reguard',
    reason: 'registry-401',
    reguard: true,
  },
  {
    name: 'token exchange 401 without a DO connection: retried, not reguarded',
    stderr:
      'error during command execution: writing bundle: GET http://x/v2/registry/auth: unexpected status code 401 Unauthorized: {"id": "Unauthorized", "message": "Unable to authenticate you" }',
    kind: 'transient',
    reason: 'registry-401',
    reguard: false,
  },
  {
    name: 'registry UNAUTHORIZED error code',
    stderr: 'Error: PUT https://r/v2/a/manifests/sha256-x.att: UNAUTHORIZED: authentication required',
    kind: 'reguard',
    reason: 'registry-401',
    reguard: true,
  },
  {
    name: 'Rekor 404 getLogEntryByUuidNotFound',
    stderr:
      'error during command execution: signing [docker.io/l/t@sha256:49758a04]: signing digest: [GET /api/v1/log/entries/{entryUUID}][404] getLogEntryByUuidNotFound',
    kind: 'transient',
    reason: 'rekor-404',
  },
  {
    name: 'context deadline exceeded',
    stderr: 'Error: Post "https://rekor.sigstore.dev/api/v1/log/entries": giving up after 1 attempt(s): context deadline exceeded',
    kind: 'transient',
    reason: 'timeout',
  },
  { name: 'HTTP 503', stderr: 'Error: GET https://r/v2/: unexpected status code 503 Service Unavailable', kind: 'transient', reason: 'server-5xx' },
  {
    name: 'HTTP 502 in brackets',
    stderr: 'error during command execution: [POST /api/v1/log/entries][502] createLogEntryBadGateway',
    kind: 'transient',
    reason: 'server-5xx',
  },
  {
    name: 'HTTP 429',
    stderr: 'Error: GET https://r/v2/a/manifests/x: TOOMANYREQUESTS: rate limit exceeded; unexpected status code 429 Too Many Requests',
    kind: 'transient',
    reason: 'rate-limited',
  },
  {
    name: 'connection reset',
    stderr: 'Error: Put "https://r/v2/a/blobs/uploads/x": read tcp 10.0.0.1:5555->1.2.3.4:443: read: connection reset by peer',
    kind: 'transient',
    reason: 'network',
  },
  {
    name: 'connection refused (real cosign 2.5)',
    stderr:
      'error during command execution: signing 127.0.0.1:5999/demo/app@sha256:8b: Get "https://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
    kind: 'transient',
    reason: 'network',
  },
  {
    name: 'MANIFEST_UNKNOWN',
    stderr:
      'Error: signing [ghcr.io/slashdevops/idp-scim-sync@sha256:2925]: GET https://ghcr.io/v2/slashdevops/idp-scim-sync/manifests/sha256:2925: MANIFEST_UNKNOWN: manifest unknown',
    kind: 'permanent',
    reason: 'manifest-unknown',
  },
  {
    name: 'missing manifest (real cosign 3.1 HEAD 404)',
    stderr:
      'error during command execution: signing 127.0.0.1:5077/demo/app@sha256:0000000000000000000000000000000000000000000000000000000000000000: writing bundle: HEAD http://127.0.0.1:5077/v2/demo/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000: unexpected status code 404 Not Found (HEAD responses have no body, use GET for details)',
    kind: 'permanent',
    reason: 'manifest-unknown',
  },
  {
    name: 'unknown flag (--retry, which cosign does not have)',
    stderr: 'Error: unknown flag: --retry\nerror during command execution: unknown flag: --retry',
    kind: 'permanent',
    reason: 'unknown-flag',
  },
  {
    name: 'missing key file (real cosign 3.1)',
    stderr:
      'error during command execution: signing x@sha256:8b: creating bundle: getting keypair and token: getting signer: reading key: open nokey.key: no such file or directory',
    kind: 'permanent',
    reason: 'missing-key',
  },
  {
    name: 'bad key file (real cosign 2.5)',
    stderr: 'error during command execution: signing x@sha256:8b: getting signer: reading key: invalid pem block',
    kind: 'permanent',
    reason: 'bad-key',
  },
  {
    name: 'wrong key password (real cosign 2.5 and 3.1)',
    stderr: 'error during command execution: signing x@sha256:8b: getting signer: reading key: decrypt: encrypted: decryption failed',
    kind: 'permanent',
    reason: 'wrong-key-password',
  },
  {
    name: 'wrong key password (incorrect password wording)',
    stderr: 'Error: incorrect password for encrypted cosign private key',
    kind: 'permanent',
    reason: 'wrong-key-password',
  },
  {
    name: 'encrypted key, no password (real cosign 3.1, no TTY)',
    stderr: 'Enter password for private key: Error: signing x: reading key: inappropriate ioctl for device',
    kind: 'permanent',
    reason: 'key-password-required',
  },
  {
    name: 'invalid predicate for slsaprovenance (real cosign 2.5)',
    stderr: 'Using payload from: pred.json\nerror during command execution: signing x@sha256:8b: provenance predicate: required field builder missing',
    kind: 'permanent',
    reason: 'invalid-predicate',
  },
  {
    name: 'DENIED on an immutable tag',
    stderr:
      'ERROR: failed to push: denied: requested access to the resource is denied — tag 2.2.0-beta.6 is already assigned to an image in this repository and cannot be updated due to immutability settings.',
    kind: 'permanent',
    reason: 'denied',
  },
  {
    name: '"Using payload from: predicate.json" does not make a 401 an invalid predicate',
    stderr:
      'Using payload from: /tmp/predicate.json\nSigning artifact...\nerror during command execution: GET http://x/v2/registry/auth?scope=a: unexpected status code 401 Unauthorized',
    kind: 'reguard',
    reason: 'registry-401',
    reguard: true,
  },
  // cobra usage errors, as the real cosign 2.5 and 3.1 print them: the same argv fails every time.
  {
    name: 'usage: invalid flag value (real cosign)',
    stderr:
      'Error: invalid argument "abc" for "-t, --timeout" flag: time: invalid duration "abc"\nerror during command execution: invalid argument "abc" for "-t, --timeout" flag: time: invalid duration "abc"',
    kind: 'permanent',
    reason: 'usage',
  },
  {
    name: 'usage: flag needs an argument (real cosign)',
    stderr: 'Error: flag needs an argument: --key\nerror during command execution: flag needs an argument: --key',
    kind: 'permanent',
    reason: 'usage',
  },
  {
    name: 'usage: requires at least 1 arg (real cosign)',
    stderr: 'Error: requires at least 1 arg(s), only received 0\nerror during command execution: requires at least 1 arg(s), only received 0',
    kind: 'permanent',
    reason: 'usage',
  },
  {
    name: 'usage: accepts N args',
    stderr: 'Error: accepts 1 arg(s), received 2\nerror during command execution: accepts 1 arg(s), received 2',
    kind: 'permanent',
    reason: 'usage',
  },
  {
    name: 'usage: unknown command (real cosign)',
    stderr:
      'Error: unknown command "frobnicate" for "cosign"\nRun \'cosign --help\' for usage.\nerror during command execution: unknown command "frobnicate" for "cosign"',
    kind: 'permanent',
    reason: 'usage',
  },
  {
    name: 'unknown flag (real cosign 3.1)',
    stderr: 'Error: unknown flag: --bogus\nerror during command execution: unknown flag: --bogus',
    kind: 'permanent',
    reason: 'unknown-flag',
  },
  {
    name: 'verify: nothing there',
    stderr: 'error during command execution: no signatures found',
    kind: 'permanent',
    reason: 'not-verified',
    command: 'verify',
  },
  {
    name: 'unknown failure: retried within the budget',
    stderr: 'error during command execution: something odd happened',
    kind: 'transient',
    reason: 'unknown',
  },
];

describe('unit: Cosign@1 failure classification', () => {
  for (const s of SAMPLES) {
    it(`${s.name} → ${s.kind}/${s.reason}`, () => {
      const c = classifyCosignFailure({ stderr: s.stderr, code: 1, timedOut: false }, { reguardOn401: s.reguard ?? false, command: s.command ?? 'attest' });
      assert.strictEqual(c.kind, s.kind);
      assert.strictEqual(c.reason, s.reason);
      if (c.kind === 'permanent') {
        assert.ok(c.hint && !c.hint.includes('\n'), 'a permanent failure carries a one-line hint');
      }
    });
  }

  it('an attempt timeout is transient whatever stderr says', () => {
    const c = classifyCosignFailure({ stderr: 'unknown flag: --x', code: null, timedOut: true }, { reguardOn401: true, command: 'attest' });
    assert.deepStrictEqual([c.kind, c.reason], ['transient', 'attempt-timeout']);
  });

  it("summarizeStderr keeps cosign's last error line, one line", () => {
    const s = summarizeStderr({
      stderr: 'Using payload from: p.json\nError: x\nerror during command execution: the real cause\n',
      code: 1,
      timedOut: false,
      signal: null,
    });
    assert.strictEqual(s, 'the real cause');
  });

  it("cosign's lines are cleaned by the output layer: registered secrets redacted, agent commands neutralised", () => {
    // The job's own redact() is gone: every line goes through output.ts's clean(), the one place.
    addSecret('dop_v1_abc');
    addSecret('s3cret!');
    assert.strictEqual(
      clean('token dop_v1_abc and pw s3cret! ##vso[task.setvariable variable=x]y'),
      'token *** and pw *** ##vso_[task.setvariable variable=x]y',
    );
  });
});

// ------------------------------------------------------------------ flags per cosign version

/** Help text excerpts as cosign 2.5 and 3.1 print them for `attest --help` / `verify-attestation --help`. */
const HELP = {
  v2: {
    attest:
      "Flags:\n      --allow-http-registry=false:\n      --key='':\n  -r, --recursive=false:\n      --rekor-url='https://rekor.sigstore.dev':\n      --tlog-upload=true:\n      --type='custom':\n  -y, --yes=false:\n",
    'verify-attestation':
      "Flags:\n      --insecure-ignore-tlog=false:\n      --key='':\n      --rekor-url='https://rekor.sigstore.dev':\n      --type='custom':\n",
  },
  v3: {
    attest:
      "Flags:\n      --allow-http-registry=false:\n      --key='':\n      --signing-config='':\n      --type='custom':\n      --use-signing-config=true:\n  -y, --yes=false:\n",
    'verify-attestation': "Flags:\n      --insecure-ignore-tlog=false:\n      --key='':\n      --trusted-root='':\n      --type='custom':\n",
  },
};

/** A probe from canned help text; hidden flags accepted per `hidden` (cosign 3 hides --tlog-upload and --rekor-url). */
function cannedProbe(help: Record<string, string>, hidden: string[]): FlagProbe & { probes: string[][] } {
  const probes: string[][] = [];
  return {
    probes,
    flags: async (command) => ({ listed: parseHelpFlags(help[command] ?? ''), probed: new Map() }),
    accepts: async (command, flags) => {
      probes.push([command, ...flags]);
      const listed = parseHelpFlags(help[command] ?? '');
      return flags.every((f) => {
        const name = f.replace(/^--/, '').split('=')[0];
        return listed.has(name) || hidden.includes(name);
      });
    },
  };
}

function options(extra: Partial<CosignOptions> = {}): CosignOptions {
  return {
    command: 'attest',
    key: '/k/cosign.key',
    publicKey: '/k/cosign.pub',
    predicate: '/p.json',
    predicateType: 'https://example.com/promotion/v1',
    annotations: [],
    tlogUpload: false,
    allowHttpRegistry: true,
    allowInsecureRegistry: false,
    extraArgs: [],
    ...extra,
  };
}

describe('unit: Cosign@1 flag selection per cosign version', () => {
  it('parseHelpFlags reads long flags (with and without shorthand)', () => {
    const f = parseHelpFlags(HELP.v2.attest);
    for (const n of ['allow-http-registry', 'key', 'recursive', 'tlog-upload', 'yes']) assert.ok(f.has(n), n);
  });

  it('cosign 2.x, no tlog: --tlog-upload=false only (2.x has no --use-signing-config)', async () => {
    const plan = await planFlags(options(), cannedProbe(HELP.v2, []));
    assert.ok(plan.args.includes('--tlog-upload=false'));
    assert.ok(!plan.args.some((a) => a.startsWith('--use-signing-config')));
    assert.deepStrictEqual(plan.args.slice(0, 5), [
      '--yes',
      '--key=/k/cosign.key',
      '--predicate=/p.json',
      '--type=https://example.com/promotion/v1',
      '--tlog-upload=false',
    ]);
  });

  it('cosign 3.x, no tlog: --use-signing-config=false --tlog-upload=false (checked by a parse probe, the flag is hidden)', async () => {
    const probe = cannedProbe(HELP.v3, ['tlog-upload', 'rekor-url']);
    const plan = await planFlags(options(), probe);
    const i = plan.args.indexOf('--use-signing-config=false');
    assert.ok(i >= 0 && plan.args[i + 1] === '--tlog-upload=false', plan.args.join(' '));
    assert.deepStrictEqual(probe.probes, [['attest', '--use-signing-config=false', '--tlog-upload=false']]);
  });

  it('tlogUpload true: cosign defaults on both (no tlog flags at all)', async () => {
    for (const [help, hidden] of [
      [HELP.v2, []],
      [HELP.v3, ['tlog-upload']],
    ] as const) {
      const plan = await planFlags(options({ tlogUpload: true }), cannedProbe(help, [...hidden]));
      assert.ok(!plan.args.some((a) => /tlog|signing-config|rekor/.test(a)), plan.args.join(' '));
    }
  });

  it('rekorUrl: --rekor-url on 2.x; with --use-signing-config=false on 3.x', async () => {
    const v2 = await planFlags(options({ tlogUpload: true, rekorUrl: 'https://rekor.internal' }), cannedProbe(HELP.v2, []));
    assert.ok(v2.args.includes('--rekor-url=https://rekor.internal'));
    assert.ok(!v2.args.some((a) => a.startsWith('--use-signing-config')));
    const v3 = await planFlags(options({ tlogUpload: true, rekorUrl: 'https://rekor.internal' }), cannedProbe(HELP.v3, ['rekor-url']));
    assert.ok(v3.args.includes('--use-signing-config=false') && v3.args.includes('--rekor-url=https://rekor.internal'));
  });

  it('a cosign that refuses the tlog flags fails with a UserError naming tlogUpload', async () => {
    await assert.rejects(planFlags(options(), cannedProbe(HELP.v3, [])), /does not accept --use-signing-config=false --tlog-upload=false.*tlogUpload/);
  });

  it('verify without tlog: --insecure-ignore-tlog=true on both; --type for verify-attestation', async () => {
    for (const help of [HELP.v2, HELP.v3]) {
      const plan = await planFlags(options({ command: 'verify-attestation' }), cannedProbe(help, []));
      assert.deepStrictEqual(plan.args, [
        '--key=/k/cosign.pub',
        '--type=https://example.com/promotion/v1',
        '--insecure-ignore-tlog=true',
        '--allow-http-registry=true',
      ]);
    }
  });

  it("cosign's own --timeout follows attemptTimeoutSeconds (its default is 3m)", async () => {
    for (const help of [HELP.v2, HELP.v3]) {
      const plan = await planFlags(options({ tlogUpload: true, timeoutSeconds: 240 }), cannedProbe(help, []));
      assert.ok(plan.args.includes('--timeout=240s'), plan.args.join(' '));
    }
  });

  it('annotations and extra arguments go before the image; secrets never in the plan', async () => {
    const plan = await planFlags(
      options({ command: 'sign', tlogUpload: true, annotations: ['env=prod'], extraArgs: ['--timeout', '90s'] }),
      cannedProbe(HELP.v2, []),
    );
    assert.ok(plan.args.includes('--annotations=env=prod'));
    assert.deepStrictEqual(plan.args.slice(-2), ['--timeout', '90s']);
  });

  it('the real cosign 2.5 and 3.1 binaries get their own flag sets (probed, cached per binary)', async () => {
    // The binaries run through wrappers that count their runs: the second plan must start none.
    const dir = tempDir('flag-probe');
    const runs = path.join(dir, 'runs');
    const counted = (name: string, binary: string) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, `#!/usr/bin/env bash\necho x >> '${runs}'\nexec '${binary}' "$@"\n`, { mode: 0o755 });
      return file;
    };
    const c2 = counted('cosign2', tools.cosign2);
    const c3 = counted('cosign3', tools.cosign3);
    const noDisk = { diskCache: false };
    const v2 = await planFlags(options(), binaryFlagProbe(c2, process.env, noDisk));
    const v3 = await planFlags(options(), binaryFlagProbe(c3, process.env, noDisk));
    assert.ok(!v2.args.some((a) => a.startsWith('--use-signing-config')) && v2.args.includes('--tlog-upload=false'), v2.args.join(' '));
    assert.ok(v3.args.includes('--use-signing-config=false') && v3.args.includes('--tlog-upload=false'), v3.args.join(' '));
    const probed = fs.readFileSync(runs, 'utf8').split('\n').filter(Boolean).length;
    assert.ok(probed >= 2, `each binary was probed (${probed} runs)`);
    const again = await planFlags(options(), binaryFlagProbe(c3, process.env, noDisk));
    assert.deepStrictEqual(again.args, v3.args);
    assert.strictEqual(fs.readFileSync(runs, 'utf8').split('\n').filter(Boolean).length, probed, 'the second plan comes from the cache: no cosign run');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

// ------------------------------------------------------------------ references, arguments, credentials

describe('unit: Cosign@1 references, arguments, credentials', () => {
  it('parses image references with Docker rules', () => {
    const a = parseImageReference('registry.digitalocean.com/acme/app:1.2.3');
    assert.deepStrictEqual([a.registry, a.repository, a.tag, a.digest], ['registry.digitalocean.com', 'acme/app', '1.2.3', undefined]);
    const b = parseImageReference('127.0.0.1:5000/demo/app');
    assert.deepStrictEqual([b.registry, b.repository, b.tag], ['127.0.0.1:5000', 'demo/app', 'latest']);
    const c = parseImageReference('alpine');
    assert.deepStrictEqual([c.registry, c.repository], ['docker.io', 'library/alpine']);
    const d = parseImageReference(IMG);
    assert.strictEqual(d.digest, 'sha256:' + 'a'.repeat(64));
    const e = parseImageReference('localhost:5000/x/y:tag@sha256:' + 'b'.repeat(64));
    assert.deepStrictEqual([e.registry, e.tag], ['localhost:5000', 'tag']);
    for (const bad of [
      '',
      'UPPER/case',
      'a/b@sha256:short',
      'a b',
      'r.io/x:bad tag',
      '--output-signature=./x',
      '-x.y/z',
      'host:99999/a/b:1',
      'a.b?x=1/repo:1',
    ]) {
      assert.throws(() => parseImageReference(bad), /Input 'images'/, bad);
    }
  });

  it('splits extra arguments like a shell (quotes, backslashes), refuses an open quote', () => {
    assert.deepStrictEqual(splitArguments(`--timeout 90s -a "k=v w" 'x y' a\\ b ""`), ['--timeout', '90s', '-a', 'k=v w', 'x y', 'a b', '']);
    assert.deepStrictEqual(splitArguments('  '), []);
    assert.throws(() => splitArguments('"open'), /unclosed/);
  });

  it('docker config keys: Docker Hub aliases, URL keys, base64 auth', () => {
    assert.strictEqual(normalizeRegistryHost('https://index.docker.io/v1/'), 'docker.io');
    assert.strictEqual(normalizeRegistryHost('http://127.0.0.1:5000'), '127.0.0.1:5000');
    assert.strictEqual(configKey('registry-1.docker.io'), 'https://index.docker.io/v1/');
    const auth = Buffer.from('u:p:w').toString('base64');
    assert.deepStrictEqual(decodeAuth(auth), { username: 'u', password: 'p:w' });
    assert.deepStrictEqual(lookupFromAuths({ 'https://index.docker.io/v1/': { auth } })('docker.io'), { username: 'u', password: 'p:w' });
  });

  it('a signature is recognised among cosign 3 verify output (which also lists attestations)', () => {
    const att = JSON.stringify([{ critical: { type: 'https://example.com/p/v1' } }]);
    const sig2 = JSON.stringify([{ critical: { type: 'cosign container image signature' } }]);
    const sig3 = JSON.stringify([{ critical: { type: 'https://sigstore.dev/cosign/sign/v1' } }]);
    assert.strictEqual(hasSignaturePayload('\n' + att), false);
    assert.strictEqual(hasSignaturePayload('\n' + sig2), true);
    assert.strictEqual(hasSignaturePayload(sig3), true);
    assert.strictEqual(hasSignaturePayload('not json'), false);
  });
});

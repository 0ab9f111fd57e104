// The registry client fails closed (tasks/common/services/oci.ts): small hostile registries on 127.0.0.1 send
// error pages, truncated or foreign bodies, bad headers and bad tokens; each must be an error of the
// right class (transient: retried within the budget; permanent: once), never a digest or an all-clear.
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';
import { HttpFailure, UnexpectedAnswerError } from '../../tasks/common/platform/http';
import {
  MAX_CHALLENGE_LENGTH,
  MEDIA_TYPES,
  RegistryError,
  ResolveOptions,
  classifyRegistryFailure,
  parseChallenge,
  parseImageReference,
  resolveImage,
} from '../../tasks/common/services/oci';
import { redact } from '../../tasks/common/platform/output';
import { withRetry } from '../../tasks/common/platform/retry';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Hostile {
  host: string;
  hits: string[];
  close(): Promise<void>;
}

function hostile(handler: Handler): Promise<Hostile> {
  const hits: string[] = [];
  const sockets = new Set<import('net').Socket>();
  const srv = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        host: `127.0.0.1:${(srv.address() as AddressInfo).port}`,
        hits,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            srv.close(() => done());
          }),
      }),
    ),
  );
}

const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:' + '1'.repeat(64), size: 2 },
    layers: [],
  }),
);
const MANIFEST_DIGEST = 'sha256:' + crypto.createHash('sha256').update(MANIFEST).digest('hex');

function opts(extra: Partial<ResolveOptions> = {}): ResolveOptions {
  return { allowHttp: true, allowInsecure: false, timeoutMs: 5000, ...extra };
}

async function resolveOn(
  handler: Handler,
  extra: Partial<ResolveOptions> = {},
): Promise<{ result?: Awaited<ReturnType<typeof resolveImage>>; error?: unknown; hits: string[] }> {
  const h = await hostile(handler);
  try {
    const result = await resolveImage(parseImageReference(`${h.host}/demo/app:1`), opts(extra));
    return { result, hits: h.hits };
  } catch (error) {
    return { error, hits: h.hits };
  } finally {
    await h.close();
  }
}

function transient(error: unknown, type: new (...a: never[]) => Error, re: RegExp): void {
  assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
  assert.match((error as Error).message, re);
  assert.strictEqual(classifyRegistryFailure(error).kind, 'transient', String(error));
}

describe('registry answers fail closed (oci.ts, hostile registries on 127.0.0.1)', () => {
  it("a proxy's HTML page with status 200 is not a manifest: transient, never hashed", async () => {
    const r = await resolveOn((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<html><body>Please log in to the proxy</body></html>');
    });
    transient(r.error, UnexpectedAnswerError, /content type 'text\/html', not a manifest media type/);
  });

  it('a truncated manifest body is transient (cut short on the wire, or JSON cut short)', async () => {
    const cut = await resolveOn((req, res) => {
      if (req.method === 'HEAD') return res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest }).end();
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest, 'content-length': String(MANIFEST.length) });
      res.write(MANIFEST.subarray(0, 20));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    transient(cut.error, HttpFailure, /cannot reach registry .*(cut short|aborted|socket hang up)/);
    const half = await resolveOn((_req, res) => {
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
      res.end(MANIFEST.subarray(0, 30));
    });
    transient(half.error, UnexpectedAnswerError, /not a manifest \(not JSON/);
  });

  it('JSON that is not a manifest, or whose mediaType disagrees, is refused', async () => {
    for (const [ct, body, why] of [
      ['application/json', '{"hello":"world"}', /content type 'application\/json'/],
      [MEDIA_TYPES.ociManifest, '{"hello":"world"}', /no schemaVersion 2/],
      [MEDIA_TYPES.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] }), /differs from the Content-Type/],
      [MEDIA_TYPES.ociIndex, JSON.stringify({ schemaVersion: 2, layers: [] }), /not shaped as application\/vnd.oci.image.index.v1\+json/],
      ['', JSON.stringify({ schemaVersion: 2, config: {}, layers: [] }), /no media type/],
      ['', JSON.stringify({ schemaVersion: 2, mediaType: 'text/x-evil', layers: [] }), /mediaType 'text\/x-evil'/],
      ['application/vnd.oci.image.manifest.v1+json;x=1 2', '{}', /not a manifest|schemaVersion/],
    ] as Array<[string, string, RegExp]>) {
      const r = await resolveOn((_req, res) => {
        res.writeHead(200, ct ? { 'content-type': ct } : {});
        res.end(body);
      });
      transient(r.error, UnexpectedAnswerError, why);
    }
  });

  it("no Content-Type: the body's own mediaType decides; a Docker-Content-Digest outside the grammar is ignored (the bytes are hashed)", async () => {
    const r = await resolveOn((_req, res) => {
      res.writeHead(200, { 'docker-content-digest': 'sha256:not-a-digest ##vso[task.complete]' });
      res.end(MANIFEST);
    });
    assert.ifError(r.error);
    assert.strictEqual(r.result!.digest, MANIFEST_DIGEST);
    assert.strictEqual(r.result!.mediaType, MEDIA_TYPES.ociManifest);
    assert.strictEqual(r.result!.source, 'get');
  });

  it('a Docker-Content-Digest that fits the grammar but not the bytes is refused (permanent)', async () => {
    const r = await resolveOn((req, res) => {
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest, ...(req.method === 'GET' ? { 'docker-content-digest': 'sha256:' + 'f'.repeat(64) } : {}) });
      res.end(MANIFEST);
    });
    assert.ok(r.error instanceof RegistryError && r.error.reason === 'digest-mismatch', String(r.error));
    assert.strictEqual(classifyRegistryFailure(r.error).kind, 'permanent');
  });

  it('404 is MANIFEST_UNKNOWN only from a GET whose JSON error body says so; an HTML 404 is retried', async () => {
    const known = await resolveOn((req, res) => {
      res.writeHead(404, req.method === 'GET' ? { 'content-type': 'application/json' } : {});
      res.end(req.method === 'GET' ? JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }) : undefined);
    });
    assert.ok(known.error instanceof RegistryError && known.error.reason === 'manifest-unknown', String(known.error));
    assert.deepStrictEqual(
      known.hits.map((h) => h.split(' ')[0]),
      ['HEAD', 'GET'],
      'a HEAD 404 is confirmed by a GET',
    );
    assert.deepStrictEqual([classifyRegistryFailure(known.error).kind, classifyRegistryFailure(known.error).reason], ['permanent', 'manifest-unknown']);
    const html = await resolveOn((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<h1>MANIFEST_UNKNOWN</h1> Not Found');
    });
    transient(html.error, UnexpectedAnswerError, /404 without a MANIFEST_UNKNOWN error body/);
  });

  it('401/403 are permanent with the credentials hint; 503 and 429 (Retry-After) classify through classifyHttpFailure', async () => {
    const denied = await resolveOn((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"DENIED"}]}');
    });
    const c = classifyRegistryFailure(denied.error);
    assert.deepStrictEqual([c.kind, c.reason], ['permanent', 'registry-403']);
    assert.match(c.hint ?? '', /credentials/);
    const busy = await resolveOn((_req, res) => {
      res.writeHead(429, { 'retry-after': '2' });
      res.end();
    });
    assert.deepStrictEqual(classifyRegistryFailure(busy.error), { kind: 'transient', reason: 'http-429', waitMs: 2000 });
  });
});

describe('registry token answers (oci.ts)', () => {
  const TOKEN = 'tok_' + crypto.randomBytes(16).toString('hex');

  function withToken(answer: (res: http.ServerResponse) => void, host: () => string): Handler {
    return (req, res) => {
      if (req.url!.startsWith('/token')) return answer(res);
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host()}/token",service="svc"` });
        return res.end();
      }
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest, 'docker-content-digest': MANIFEST_DIGEST });
      res.end(req.method === 'GET' ? MANIFEST : undefined);
    };
  }

  async function run(answer: (res: http.ServerResponse) => void): Promise<{ result?: unknown; error?: unknown }> {
    let host = '';
    const h = await hostile(withToken(answer, () => host));
    host = h.host;
    try {
      return { result: await resolveImage(parseImageReference(`${h.host}/demo/app:1`), opts()) };
    } catch (error) {
      return { error };
    } finally {
      await h.close();
    }
  }

  it('a JSON token of sane size is used, and registered as a secret (never printed)', async () => {
    const r = await run((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: TOKEN }));
    });
    assert.ifError(r.error);
    assert.strictEqual(redact(`Bearer ${TOKEN}`), 'Bearer ***');
  });

  it('an HTML page, a token that is no string, too large or carries a line break: transient, retried', async () => {
    for (const [ct, body, why] of [
      ['text/html', '<html>sign in</html>', /not JSON/],
      ['application/json', '{"token": 12345}', /without a usable token/],
      ['application/json', JSON.stringify({ token: 'x'.repeat(20_000) }), /without a usable token/],
      ['application/json', JSON.stringify({ access_token: 'abc\r\nX-Evil: 1' }), /without a usable token/],
      ['application/json', '{"token": "abc', /does not parse/],
    ] as Array<[string, string, RegExp]>) {
      const r = await run((res) => {
        res.writeHead(200, { 'content-type': ct });
        res.end(body);
      });
      transient(r.error, UnexpectedAnswerError, why);
    }
  });
});

describe('registry challenges (oci.ts)', () => {
  it('reads a Bearer challenge, quoted or not, and refuses one longer than MAX_CHALLENGE_LENGTH', () => {
    assert.deepStrictEqual(parseChallenge('Bearer realm="https://r/token",service=r,scope="repository:a:pull"'), {
      scheme: 'bearer',
      params: { realm: 'https://r/token', service: 'r', scope: 'repository:a:pull' },
    });
    const padded = `Bearer realm="https://r/token",x="${'a'.repeat(MAX_CHALLENGE_LENGTH)}"`;
    assert.strictEqual(parseChallenge(padded), undefined, 'an overlong challenge is not read');
    assert.strictEqual(parseChallenge(`Bearer ${'a'.repeat(MAX_CHALLENGE_LENGTH + 1)}`), undefined);
    assert.strictEqual(parseChallenge(undefined), undefined);
  });

  it('an overlong challenge leaves the 401 standing: no token is asked for', async () => {
    let tokenAsked = false;
    const h = await hostile((req, res) => {
      if (req.url!.startsWith('/token')) tokenAsked = true;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${h.host}/token",service=${'s'.repeat(15_000)}` });
      res.end();
    });
    try {
      await assert.rejects(resolveImage(parseImageReference(`${h.host}/demo/app:1`), opts()), (e: unknown) => /401/.test(String(e)));
      assert.strictEqual(tokenAsked, false);
    } finally {
      await h.close();
    }
  });
});

describe('deadlines reach requests in flight (oci.ts)', () => {
  it('a registry that trickles 1 byte a second ends the attempt at attemptTimeoutSeconds', async function () {
    this.timeout(10_000);
    const h = await hostile((_req, res) => {
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
      const t = setInterval(() => res.write(' '), 1000);
      res.on('close', () => clearInterval(t));
    });
    const job = new AbortController();
    const started = Date.now();
    try {
      await assert.rejects(
        withRetry(
          (_n, attemptSignal) =>
            resolveImage(parseImageReference(`${h.host}/demo/app:1`), opts({ timeoutMs: 30_000, signal: attemptSignal, cancelSignal: job.signal })),
          {
            budget: { maxAttempts: 1, attemptTimeoutSeconds: 2, initialBackoffSeconds: 0, maxBackoffSeconds: 0, totalTimeoutSeconds: 10 },
            classify: classifyRegistryFailure,
            signal: job.signal,
          },
        ),
        /timeout after 1 attempt\(s\).*attempt deadline/,
      );
    } finally {
      await h.close();
    }
    const took = Date.now() - started;
    assert.ok(took >= 1900 && took < 3500, `ended after ${took} ms`);
  });
});

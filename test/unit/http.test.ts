// The one HTTP client against servers that misbehave, with garbage collections forced while requests
// wait: deadlines are plain timers the event loop holds, so a collection cannot take them away.
import * as assert from 'assert';
import * as http from 'http';
import * as net from 'net';
import * as v8 from 'v8';
import * as vm from 'vm';
import { BODY_LIMITS, HttpFailure, HttpStatusError, UnexpectedAnswerError, classifyHttpFailure, jsonBody, request } from '../../tasks/common/platform/http';
import { linkedDeadline, withRetry } from '../../tasks/common/platform/retry';
import { CancelledError } from '../../tasks/common/platform/errors';

v8.setFlagsFromString('--expose-gc');
const forceGc = vm.runInNewContext('gc') as () => void;

/** Forces a full collection every few milliseconds until stopped. */
function collectContinuously(): () => void {
  const timer = setInterval(() => {
    forceGc();
  }, 20);
  return () => clearInterval(timer);
}

interface Hostile {
  url: string;
  close(): Promise<void>;
}

function serve(handler: http.RequestListener): Promise<Hostile> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

async function failure(p: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  try {
    await p;
  } catch (err) {
    return { err, ms: Date.now() - started };
  }
  throw new Error('expected the request to fail');
}

describe('unit: the HTTP client', () => {
  let servers: Hostile[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });
  async function hostile(handler: http.RequestListener): Promise<string> {
    const s = await serve(handler);
    servers.push(s);
    return s.url;
  }

  it('accept-and-never-answer ends at the idle deadline, with collections forced meanwhile', async () => {
    const url = await hostile(() => undefined);
    const stop = collectContinuously();
    try {
      const { err, ms } = await failure(request({ method: 'GET', url, kind: 'apiJson', timeoutMs: 5000, idleTimeoutMs: 700 }));
      assert.ok(err instanceof HttpFailure && err.reason === 'idle', String(err));
      assert.ok(ms >= 650 && ms < 2500, `ended after ${ms} ms`);
    } finally {
      stop();
    }
  });

  it('a trickle of one byte every 100 ms ends at the total deadline, with collections forced meanwhile', async () => {
    const url = await hostile((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(t));
    });
    const stop = collectContinuously();
    try {
      const { err, ms } = await failure(request({ method: 'GET', url, kind: 'apiJson', timeoutMs: 1200, idleTimeoutMs: 1000 }));
      assert.ok(err instanceof HttpFailure && err.reason === 'timeout', String(err));
      assert.ok(ms >= 1150 && ms < 3000, `ended after ${ms} ms`);
      assert.strictEqual(classifyHttpFailure(err).kind, 'transient');
    } finally {
      stop();
    }
  });

  it("withRetry's per-attempt deadline fires under forced collections (no AbortSignal.timeout held weakly)", async () => {
    const stop = collectContinuously();
    const started = Date.now();
    try {
      const budget = { maxAttempts: 2, attemptTimeoutSeconds: 1, initialBackoffSeconds: 0, maxBackoffSeconds: 0, totalTimeoutSeconds: 5 };
      const attemptsSeen: number[] = [];
      await assert.rejects(
        withRetry(
          (attempt, signal) =>
            new Promise((_resolve, reject) => {
              attemptsSeen.push(attempt);
              signal.addEventListener('abort', () => reject(new Error('attempt deadline')), { once: true });
            }),
          { budget, classify: () => ({ kind: 'transient', reason: 'timeout' }) },
        ),
        /attempt deadline/,
      );
      assert.deepStrictEqual(attemptsSeen, [1, 2]);
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    } finally {
      stop();
    }
  });

  it('linkedDeadline fires on its own timer and follows its parent', async () => {
    const own = linkedDeadline(undefined, 100);
    await new Promise((r) => own.signal.addEventListener('abort', r, { once: true }));
    assert.strictEqual(own.expired(), true);
    const parent = new AbortController();
    const child = linkedDeadline(parent.signal, 60_000);
    parent.abort(new CancelledError());
    assert.strictEqual(child.signal.aborted, true);
    assert.strictEqual(child.expired(), false);
    child.clear();
  });

  it('the caller signal stops a request in flight', async () => {
    const url = await hostile(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const { err, ms } = await failure(request({ method: 'GET', url, kind: 'apiJson', signal: controller.signal, timeoutMs: 10_000 }));
    assert.ok(err instanceof HttpFailure && err.reason === 'aborted', String(err));
    assert.ok(ms < 2000, `ended after ${ms} ms`);
  });

  it('a body over its cap is refused (permanent), an endless one too, without buffering it', async () => {
    const url = await hostile((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (res.write(chunk));
      };
      res.on('drain', pump);
      pump();
    });
    const { err } = await failure(request({ method: 'GET', url, kind: 'token', timeoutMs: 10_000 }));
    assert.ok(err instanceof HttpFailure && err.reason === 'too-large', String(err));
    assert.strictEqual(classifyHttpFailure(err).kind, 'permanent');
    assert.ok(BODY_LIMITS.token < BODY_LIMITS.apiJson);
  });

  it('an error body is cut at its cap and handed back marked truncated', async () => {
    const url = await hostile((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>' + 'x'.repeat(200 * 1024) + '</html>');
    });
    const res = await request({ method: 'GET', url, kind: 'apiJson' });
    assert.strictEqual(res.status, 502);
    assert.strictEqual(res.truncated, true);
    assert.ok(res.body.length <= 64 * 1024);
  });

  it('a connection cut mid-body is a transient truncation', async () => {
    const url = await hostile((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"garbage_collection": {');
      setTimeout(() => req.socket.destroy(), 50);
    });
    const { err } = await failure(request({ method: 'GET', url, kind: 'apiJson' }));
    assert.ok(err instanceof HttpFailure && (err.reason === 'truncated' || err.reason === 'network'), String(err));
    assert.strictEqual(classifyHttpFailure(err).kind, 'transient');
  });

  it('redirects: followed only when asked, loops refused, credentials dropped across hosts', async () => {
    let seenAuth: string | undefined = 'unset';
    const other = await hostile((req, res) => {
      seenAuth = req.headers['authorization'];
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    const otherHost = other.replace('127.0.0.1', 'localhost');
    const url = await hostile((req, res) => {
      if (req.url === '/loop') {
        res.writeHead(302, { location: '/loop2' });
        return res.end();
      }
      if (req.url === '/loop2') {
        res.writeHead(302, { location: '/loop' });
        return res.end();
      }
      res.writeHead(302, { location: `${otherHost}/x` });
      res.end();
    });
    const noFollow = await request({ method: 'GET', url, kind: 'apiJson', headers: { Authorization: 'Bearer secret-token' } });
    assert.strictEqual(noFollow.status, 302);
    const followed = await request({ method: 'GET', url, kind: 'signature', maxRedirects: 5, headers: { Authorization: 'Bearer secret-token' } });
    assert.strictEqual(followed.status, 200);
    assert.strictEqual(seenAuth, undefined, 'the Authorization header must not cross to another host');
    const { err } = await failure(request({ method: 'GET', url: `${url}/loop`, kind: 'signature', maxRedirects: 5 }));
    assert.ok(err instanceof HttpFailure && err.reason === 'redirect', String(err));
    assert.strictEqual(classifyHttpFailure(err).kind, 'permanent');
  });

  it('the classifier: 429/5xx/408 transient (Retry-After kept), other statuses permanent, wrong shapes transient', () => {
    assert.deepStrictEqual(classifyHttpFailure(new HttpStatusError('x', 429, 2000)), { kind: 'transient', reason: 'http-429', waitMs: 2000 });
    assert.strictEqual(classifyHttpFailure(new HttpStatusError('x', 503)).kind, 'transient');
    assert.strictEqual(classifyHttpFailure(new HttpStatusError('x', 408)).kind, 'transient');
    assert.strictEqual(classifyHttpFailure(new HttpStatusError('x', 404)).kind, 'permanent');
    assert.strictEqual(classifyHttpFailure(new HttpStatusError('x', 401)).kind, 'permanent');
    assert.strictEqual(classifyHttpFailure(new UnexpectedAnswerError('html')).kind, 'transient');
    assert.strictEqual(classifyHttpFailure(new Error('other')).kind, 'permanent');
  });

  it('jsonBody believes only a JSON content type that parses', async () => {
    const url = await hostile((req, res) => {
      if (req.url === '/html') {
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('{"looks": "like json"}');
      }
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        return res.end('{"a": ');
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end('{"a": 1}');
    });
    assert.deepStrictEqual(jsonBody(await request({ method: 'GET', url, kind: 'apiJson' }), 'x'), { a: 1 });
    const html = await request({ method: 'GET', url: `${url}/html`, kind: 'apiJson' });
    assert.throws(
      () => jsonBody(html, 'x'),
      (e: unknown) => e instanceof UnexpectedAnswerError && /text\/html/.test((e as Error).message),
    );
    const cut = await request({ method: 'GET', url: `${url}/cut`, kind: 'apiJson' });
    assert.throws(() => jsonBody(cut, 'x'), UnexpectedAnswerError);
  });
});

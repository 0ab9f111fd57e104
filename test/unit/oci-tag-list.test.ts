// A repository's tag list (tasks/common/services/oci.ts listTags) is read whole or not at all:
// every `Link: rel="next"` page is followed on our own path (only its `last` tag is taken, never a
// host or path the answer names), a list whose pages do not advance or never end is an error, and
// one registry session serves every request to the repository (one token exchange).
import * as assert from 'assert';
import * as http from 'http';
import { AddressInfo } from 'net';
import { UnexpectedAnswerError } from '../../tasks/common/platform/http';
import {
  MAX_TAG_PAGES,
  RegistryCaller,
  RegistryError,
  ResolveOptions,
  listTags,
  newRegistrySession,
  parseImageReference,
} from '../../tasks/common/services/oci';

interface Server {
  host: string;
  hits: Array<{ url: string; authorization?: string }>;
  close(): Promise<void>;
}

function serve(handler: (url: URL, req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Server> {
  const hits: Server['hits'] = [];
  const srv = http.createServer((req, res) => {
    hits.push({ url: req.url ?? '', authorization: req.headers.authorization });
    handler(new URL(req.url ?? '/', 'http://x'), req, res);
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        host: `127.0.0.1:${(srv.address() as AddressInfo).port}`,
        hits,
        close: () => new Promise<void>((done) => srv.close(() => done())),
      }),
    ),
  );
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** One attempt per request, no retries: what each answer means, not how the budget treats it. */
function caller(session = newRegistrySession()): RegistryCaller {
  const o: ResolveOptions = { allowHttp: true, allowInsecure: false, timeoutMs: 5000, session };
  return (op) => op(o);
}

const tags = (from: number, n: number) => Array.from({ length: n }, (_, i) => `t${String(from + i).padStart(5, '0')}`);

describe('listTags: a repository tag list, every page or an error', () => {
  it('follows Link rel="next" through every page, asking only for the next `last` on its own path', async () => {
    const all = tags(0, 2500);
    const s = await serve((url, _req, res) => {
      const last = url.searchParams.get('last');
      const n = Number(url.searchParams.get('n'));
      const start = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(start, start + n);
      const more = start + n < all.length;
      // The link names another host and path: only its `last` may be used.
      const link: Record<string, string> = more ? { link: `<https://elsewhere.invalid/steal?last=${page[page.length - 1]}&n=${n}>; rel="next"` } : {};
      json(res, 200, { name: 'team/app', tags: page }, link);
    });
    try {
      const got = await listTags(parseImageReference(`${s.host}/team/app:1`), caller());
      assert.deepStrictEqual(got, all);
      assert.strictEqual(s.hits.length, 3);
      assert.ok(
        s.hits.every((h) => h.url.startsWith('/v2/team/app/tags/list?n=1000')),
        s.hits.map((h) => h.url).join(' '),
      );
    } finally {
      await s.close();
    }
  });

  it('a next link that does not advance, or has no valid last, is an error, never a short list', async () => {
    const loop = await serve((_url, _req, res) => json(res, 200, { tags: ['a', 'b'] }, { link: '</v2/team/app/tags/list?last=b&n=1000>; rel="next"' }));
    const bad = await serve((_url, _req, res) => json(res, 200, { tags: ['a'] }, { link: '</v2/team/app/tags/list?n=1000>; rel="next"' }));
    try {
      await assert.rejects(
        listTags(parseImageReference(`${loop.host}/team/app:1`), caller()),
        (e: Error) => e instanceof UnexpectedAnswerError && /do not advance/.test(e.message),
      );
      await assert.rejects(
        listTags(parseImageReference(`${bad.host}/team/app:1`), caller()),
        (e: Error) => e instanceof UnexpectedAnswerError && /without a valid 'last'/.test(e.message),
      );
    } finally {
      await loop.close();
      await bad.close();
    }
  });

  it(`a list that pages on past ${MAX_TAG_PAGES} pages is refused: which tags point at a digest cannot be checked`, async () => {
    let k = 0;
    const s = await serve((_url, _req, res) => {
      const page = [`p${String(k++).padStart(6, '0')}`];
      json(res, 200, { tags: page }, { link: `</v2/team/app/tags/list?last=${page[0]}&n=1000>; rel="next"` });
    });
    try {
      await assert.rejects(
        listTags(parseImageReference(`${s.host}/team/app:1`), caller()),
        (e: Error) => e instanceof RegistryError && e.reason === 'config' && /more than 100 pages/.test(e.message),
      );
      assert.strictEqual(s.hits.length, MAX_TAG_PAGES);
    } finally {
      await s.close();
    }
  });

  it('a tags list out of grammar (a ##vso line for a tag) is refused; NAME_UNKNOWN is an empty repository', async () => {
    const evil = await serve((_url, _req, res) => json(res, 200, { tags: ['ok', '##vso[task.setvariable variable=x]1'] }));
    const none = await serve((_url, _req, res) => json(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }));
    try {
      await assert.rejects(
        listTags(parseImageReference(`${evil.host}/team/app:1`), caller()),
        (e: Error) => e instanceof UnexpectedAnswerError && /out of grammar/.test(e.message),
      );
      assert.deepStrictEqual(await listTags(parseImageReference(`${none.host}/team/app:1`), caller()), []);
    } finally {
      await evil.close();
      await none.close();
    }
  });

  it('one session for the repository: the Bearer token is fetched once for all its pages', async () => {
    const all = tags(0, 2100);
    let tokens = 0;
    const s = await serve((url, req, res) => {
      if (url.pathname === '/token') {
        tokens++;
        return json(res, 200, { token: `tok-${tokens}` });
      }
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="reg"`, 'content-type': 'application/json' });
        return res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      }
      const last = url.searchParams.get('last');
      const start = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(start, start + 1000);
      json(res, 200, { tags: page }, start + 1000 < all.length ? { link: `</v2/team/app/tags/list?last=${page[page.length - 1]}&n=1000>; rel="next"` } : {});
    });
    try {
      assert.deepStrictEqual(await listTags(parseImageReference(`${s.host}/team/app:1`), caller()), all);
      assert.strictEqual(tokens, 1);
      assert.ok(
        s.hits
          .filter((h) => h.url.startsWith('/v2/'))
          .slice(1)
          .every((h) => h.authorization === 'Bearer tok-1'),
      );
    } finally {
      await s.close();
    }
  });
});

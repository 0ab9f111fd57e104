// DigitalOcean's own published examples, verbatim, and a small DigitalOcean API of ours on
// 127.0.0.1 that serves them to the bundled tasks (real sockets). Each example names the file it is
// copied from: digitalocean/openapi at 7c1300c479fed9c353cda9fc21cd968619552304 (YAML, as JSON) and
// digitalocean/godo at 3fce660c40164d739042422abd984198ea680c63 (registry_test.go, its Go templates
// filled in with the test's own constants). Where a test needs a GC to end, the one field changed is
// `status`, to another value of the published enum (specification/resources/registry/models/garbage_collection.yml).
import * as http from 'http';
import { AddressInfo } from 'net';

// ---- digitalocean/openapi

/** specification/resources/registry/responses/garbage_collections.yml, `content.application/json.example`. */
export const OPENAPI_GC_LIST = {
  garbage_collections: [
    {
      uuid: 'eff0feee-49c7-4e8f-ba5c-a320c109c8a8',
      registry_name: 'example',
      status: 'requested',
      created_at: '2020-10-30T21:03:24.000Z',
      updated_at: '2020-10-30T21:03:44.000Z',
      blobs_deleted: 42,
      freed_bytes: 667,
    },
  ],
  meta: { total: 1 },
};

/** specification/resources/registry/models/garbage_collection.yml: the `example` of each property. */
export const OPENAPI_GC = {
  uuid: 'eff0feee-49c7-4e8f-ba5c-a320c109c8a8',
  registry_name: 'example',
  status: 'requested',
  created_at: '2020-10-30T21:03:24Z',
  updated_at: '2020-10-30T21:03:44Z',
  blobs_deleted: 42,
  freed_bytes: 667,
};

/** specification/resources/registry/models/registry_base.yml: the `example` of each property (registries_get answers `{registry: …}`). */
export const OPENAPI_REGISTRY = {
  registry: {
    name: 'example',
    created_at: '2020-03-21T16:02:37Z',
    region: 'fra1',
    storage_usage_bytes: 29393920,
    storage_usage_bytes_updated_at: '2020-11-04T21:39:49.530562231Z',
  },
};

/** specification/resources/registry/models/docker_credentials.yml: `auths.registry.digitalocean.com.auth.example` (decodes to user:password and a line break). */
export const OPENAPI_DOCKER_CREDENTIALS = {
  auths: { 'registry.digitalocean.com': { auth: 'YjdkMDNhNjk0N2IyMTdlZmI2ZjNlYzNiZDM1MDQ1ODI6YjdkMDNhNjk0N2IyMTdlZmI2ZjNlYzNiZDM1MDQ1ODIK' } },
};

/** specification/shared/responses/not_found.yml, `example`. */
export const OPENAPI_NOT_FOUND = { id: 'not_found', message: 'The resource you requested could not be found.' };
/** specification/shared/responses/too_many_requests.yml, `example`. */
export const OPENAPI_TOO_MANY_REQUESTS = { id: 'too_many_requests', message: 'API rate limit exceeded.' };
/** specification/shared/responses/server_error.yml, `example`. */
export const OPENAPI_SERVER_ERROR = { id: 'server_error', message: 'Unexpected server-side error' };
/** specification/shared/headers.yml: the `example` of ratelimit-limit, ratelimit-remaining and ratelimit-reset. */
export const OPENAPI_RATELIMIT_HEADERS = { 'ratelimit-limit': '5000', 'ratelimit-remaining': '4816', 'ratelimit-reset': '1444931833' };

// ---- digitalocean/godo registry_test.go

/** registry_test.go: testRegistry, testGCUUID ("mew-mew-id"), testTimeString (time.RFC3339 of 2020-04-01). */
export const GODO_REGISTRY_NAME = 'test-registry';
export const GODO_GC_UUID = 'mew-mew-id';

/** registry_test.go, TestRegistries_StartGarbageCollection / GetGarbageCollection / UpdateGarbageCollection: `garbage_collection` of testGarbageCollection. */
export const GODO_GC = {
  uuid: 'mew-mew-id',
  registry_name: 'test-registry',
  status: 'requested',
  type: 'unreferenced blobs only',
  created_at: '2020-04-01T00:00:00Z',
  updated_at: '2020-04-01T00:00:00Z',
  blobs_deleted: 42,
  freed_bytes: 666,
};

/** registry_test.go, TestRegistries_ListGarbageCollections (`/v2/registries/…`) and TestGarbageCollection_List (`/v2/registry/…`). */
export function godoGcList(base: '/v2/registries' | '/v2/registry', gc: object = GODO_GC): object {
  const page2 = `https://api.digitalocean.com${base}/test-registry/garbage-collections?page=2`;
  return { garbage_collections: [gc], links: { pages: { next: page2, last: page2 } }, meta: { total: 2 } };
}

/** registry_test.go, TestRegistries_Get (`/v2/registries/test-registry`) and TestRegistry_Get (`/v2/registry`). */
export const GODO_REGISTRY = {
  registry: {
    name: 'test-registry',
    storage_usage_bytes: 0,
    storage_usage_bytes_updated_at: '2020-04-01T00:00:00Z',
    created_at: '2020-04-01T00:00:00Z',
    region: 'r1',
  },
};

/** registry_test.go, TestRegistries_ListRepositoryTags: testRepository "test/repository", testTag, testDigest, the sizes. */
export function godoTagList(base: '/v2/registries' | '/v2/registry'): object {
  const page2 = `https://api.digitalocean.com${base}/test-registry/repositories/test%2Frepository/tags?page=2`;
  return {
    tags: [
      {
        registry_name: 'test-registry',
        repository: 'test/repository',
        tag: 'test-tag',
        manifest_digest: 'sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f',
        compressed_size_bytes: 2789669,
        size_bytes: 5843968,
        updated_at: '2020-04-01T00:00:00Z',
      },
    ],
    links: { pages: { next: page2, last: page2 } },
    meta: { total: 2 },
  };
}

/** specification/resources/registry/responses/repository_tags.yml, `example`. */
export const OPENAPI_TAG_LIST = {
  tags: [
    {
      registry_name: 'example',
      repository: 'repo-1',
      tag: 'latest',
      manifest_digest: 'sha256:cb8a924afdf0229ef7515d9e5b3024e23b3eb03ddbba287f4a19c6ac90b8d221',
      compressed_size_bytes: 2803255,
      size_bytes: 5861888,
      updated_at: '2020-04-09T23:54:25Z',
    },
  ],
  meta: { total: 1 },
};

// ---- the server

export type Route = 'account' | 'registry' | 'active' | 'list' | 'start' | 'cancel' | 'credentials' | 'tags';
export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
  route: Route | 'other';
}
export type RouteHandler = (req: SeenRequest) => Answer;

export interface PublishedApi {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

function routeOf(method: string, path: string, registry: string): { route: Route | 'other'; legacy: boolean } {
  if (path === '/v2/registry') return { route: 'account', legacy: true };
  if (path === '/v2/registry/docker-credentials') return { route: 'credentials', legacy: true };
  for (const [base, legacy] of [
    [`/v2/registries/${registry}`, false],
    [`/v2/registry/${registry}`, true],
  ] as const) {
    if (path === base) return { route: 'registry', legacy };
    if (!path.startsWith(`${base}/`)) continue;
    const rest = path.slice(base.length);
    if (rest === '/garbage-collection') return { route: method === 'POST' ? 'start' : 'active', legacy };
    if (rest.startsWith('/garbage-collection/')) return { route: 'cancel', legacy };
    if (rest === '/garbage-collections') return { route: 'list', legacy };
    if (rest === '/docker-credentials') return { route: 'credentials', legacy };
    if (/^\/repositories\/[^/]+\/tags$/.test(rest)) return { route: 'tags', legacy };
  }
  return { route: 'other', legacy: path.startsWith('/v2/registry/') };
}

/**
 * The DigitalOcean API of one registry, answering each route with its handler's published body
 * (with the published rate-limit headers); `legacyOnly`: every /v2/registries path answers
 * DigitalOcean's not_found example, as an API without the multi-registry paths would.
 */
export async function publishedDoApi(
  registry: string,
  routes: Partial<Record<Route, RouteHandler>>,
  opts: { legacyOnly?: boolean } = {},
): Promise<PublishedApi> {
  const requests: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const method = req.method ?? 'GET';
      const { route, legacy } = routeOf(method, u.pathname, registry);
      const seen: SeenRequest = { method, path: u.pathname, query: u.searchParams, body: Buffer.concat(chunks).toString('utf8'), route };
      requests.push(seen);
      const handler = route === 'other' || (opts.legacyOnly && !legacy) ? undefined : routes[route];
      const a: Answer = handler ? handler(seen) : { status: 404, body: OPENAPI_NOT_FOUND };
      const text = a.body === undefined ? '' : JSON.stringify(a.body);
      const headers: Record<string, string> = { ...OPENAPI_RATELIMIT_HEADERS, ...(a.headers ?? {}) };
      if (text) headers['content-type'] = 'application/json; charset=utf-8';
      res.writeHead(a.status, { ...headers, 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Answers in turn: each handler once, the last one from then on. */
export function inTurn(...answers: Array<Answer | (() => Answer)>): RouteHandler {
  let i = 0;
  return () => {
    const a = answers[Math.min(i++, answers.length - 1)];
    return typeof a === 'function' ? a() : a;
  };
}

export const ok = (body: unknown, status = 200): Answer => ({ status, body });
export const NONE_ACTIVE: Answer = { status: 404, body: OPENAPI_NOT_FOUND };

// Hostile surface 1: the DigitalOcean registry API (DoRegistryGcWait@1, DoRegistryGarbageCollection@1,
// and Cosign@1's docker-credentials). A polite server answers every path the tasks call; each case
// overrides one behaviour with a hostile one.
import * as http from 'http';
import { FAKE_UUID, HEADER_INJECTION, INJECTIONS, agentProxy, b64, inj, randomSecret } from './env';
import { HostileCase, table } from './properties';
import { REGISTRY, runCosign, runGc, runWait, DO_ID } from './runners';
import {
  Handler,
  Hostile,
  SeenRequest,
  htmlPage,
  sendEndless,
  sendHeadersThenStall,
  sendHuge,
  sendJson,
  sendRaw,
  sendRedirectLoop,
  sendTrickle,
  sendTruncated,
  stall,
  neverAnswersCase,
  startHttp,
} from './servers';

type Route = 'registry' | 'account' | 'active' | 'list' | 'start' | 'cancel' | 'credentials' | 'other';

function routeOf(method: string, url: string): Route {
  const p = new URL(url, 'http://x').pathname.replace(/\/+$/, '');
  const m = /^\/v2\/registries\/[^/]+(\/.*)?$/.exec(p);
  if (p === '/v2/registry') return 'account';
  if (!m) return 'other';
  const rest = m[1] ?? '';
  if (rest === '') return 'registry';
  if (rest === '/garbage-collection') return method === 'POST' ? 'start' : 'active';
  if (rest.startsWith('/garbage-collection/')) return 'cancel';
  if (rest === '/garbage-collections') return 'list';
  if (rest === '/docker-credentials') return 'credentials';
  return 'other';
}

export const gcObject = (over: Record<string, unknown> = {}) => ({
  uuid: FAKE_UUID,
  registry_name: REGISTRY,
  status: 'succeeded',
  type: 'untagged manifests and unreferenced blobs',
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:01:00Z',
  blobs_deleted: 3,
  freed_bytes: 1024,
  ...over,
});

const notFound = (res: http.ServerResponse, message = 'garbage collection not found') => sendJson(res, 404, { id: 'not_found', message });

/** The polite DigitalOcean API: a registry, no active GC, one finished GC, credentials. */
function polite(route: Route, res: http.ServerResponse): void {
  const registry = { name: REGISTRY, storage_usage_bytes: 0, created_at: '2025-01-01T00:00:00Z', region: 'nyc3' };
  switch (route) {
    case 'registry':
    case 'account':
      return sendJson(res, 200, { registry });
    case 'active':
      return notFound(res);
    case 'list':
      return sendJson(res, 200, { garbage_collections: [gcObject()], links: { pages: {} }, meta: { total: 1 } });
    case 'start':
      return sendJson(res, 201, { garbage_collection: gcObject({ status: 'requested' }) });
    case 'cancel':
      return sendJson(res, 200, { garbage_collection: gcObject({ status: 'cancelled' }) });
    case 'credentials':
      return sendJson(res, 200, { auths: { 'registry.digitalocean.com': { auth: b64('hostile-user:hostile-pass-0000') } } });
    default:
      return notFound(res, 'The resource you were accessing could not be found.');
  }
}

export function doServer(over: Partial<Record<Route, Handler>> = {}): Promise<Hostile> {
  return startHttp((req, res, seen) => {
    const route = routeOf(seen.method, seen.path);
    const h = over[route];
    if (h) h(req, res, seen);
    else polite(route, res);
  });
}

/** The first `times` answers of a route are `gc` (active), then none is active. */
function activeFor(gc: Record<string, unknown>, times = 2): Handler {
  let n = 0;
  return (_req, res) => (n++ < times ? sendJson(res, 200, { garbage_collection: gc }) : notFound(res));
}

const auth = (seen: SeenRequest) => String(seen.headers['authorization'] ?? '');

/** A case against a DigitalOcean server with `over` behaviours, run by `runner` (default GcWait). */
function doCase(
  name: string,
  classes: HostileCase['classes'],
  over: Partial<Record<Route, Handler>>,
  opts: { gc?: boolean; result?: 'Failed' | 'any' | 'notSucceeded'; idle?: boolean } = {},
): HostileCase {
  return {
    name,
    classes,
    idle: opts.idle,
    exec: async () => {
      const s = await doServer(over);
      const run = opts.gc ? runGc : runWait;
      return run(s.url, { cleanup: [s], result: opts.result });
    },
  };
}

function commandCases(): HostileCase[] {
  const out: HostileCase[] = INJECTIONS.map((x) =>
    doCase(
      `GC status with a command ${x.label} (active GC, then none)`,
      ['commands'],
      {
        active: activeFor(gcObject({ status: `scanning manifests${x.text}` })),
        list: (_q, r) => sendJson(r, 200, { garbage_collections: [gcObject({ status: `succeeded${x.text}` })], links: { pages: {} }, meta: { total: 1 } }),
      },
      { result: 'any' },
    ),
  );
  out.push(
    doCase(
      `GC uuid with a command ${inj(3).label}`,
      ['commands'],
      { active: activeFor(gcObject({ uuid: `${FAKE_UUID}${inj(3).text}`, status: 'scanning manifests' })) },
      { result: 'any' },
    ),
    doCase(
      `started GC's type and status with commands (${inj(0).label}, ${inj(5).label})`,
      ['commands'],
      { start: (_q, r) => sendJson(r, 201, { garbage_collection: gcObject({ status: `requested${inj(0).text}`, type: `untagged manifests${inj(5).text}` }) }) },
      { gc: true, result: 'any' },
    ),
    doCase(
      `error message with a command ${inj(2).label} (POST answers 400)`,
      ['commands'],
      { start: (_q, r) => sendJson(r, 400, { id: 'bad_request', message: `invalid type${inj(2).text}` }) },
      { gc: true },
    ),
    {
      name: `registry name with a command ${inj(0).label} (registry '' → GET /v2/registry)`,
      classes: ['commands'],
      exec: async () => {
        const s = await doServer({ account: (_q, r) => sendJson(r, 200, { registry: { name: `${REGISTRY}${inj(0).text}` } }) });
        return runWait(s.url, { cleanup: [s], result: 'any', inputs: { registry: '' } });
      },
    },
    doCase('Content-Type carrying a command (active GC answers 500)', ['commands', 'content-type'], {
      active: (_q, r) => sendRaw(r, 500, `application/json; x=${HEADER_INJECTION}`, JSON.stringify({ id: 'server_error', message: 'boom' })),
    }),
    doCase(
      `GC timestamps and counts with commands (${inj(1).label}, ${inj(4).label})`,
      ['commands'],
      {
        list: (_q, r) =>
          sendJson(r, 200, {
            garbage_collections: [
              gcObject({
                created_at: `2026-01-01T00:00:00Z${inj(1).text}`,
                updated_at: `2026-01-01T00:01:00Z${inj(4).text}`,
                blobs_deleted: `7${inj(0).text}`,
                freed_bytes: '1e400',
              }),
            ],
            links: { pages: {} },
            meta: { total: 1 },
          }),
      },
      { gc: true, result: 'any' },
    ),
  );
  return out;
}

function echo(status: number, id: string): Handler {
  return (_q, r, seen) => sendJson(r, status, { id, message: `request with ${auth(seen)} refused (token ${auth(seen).replace(/^Bearer /, '')})` });
}

function credentialsCase(name: string, answer: Handler, classes: HostileCase['classes']): HostileCase {
  return {
    name,
    classes,
    exec: async () => {
      const s = await doServer({ credentials: answer });
      const reg = await startHttp((_q, r) =>
        sendJson(r, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'WWW-Authenticate': 'Basic realm="hostile"' }),
      );
      const password = 'hostile-pass-0000';
      const inputs = { digitalOceanConnection: DO_ID, useDigitalOceanCredentials: 'true', registry: REGISTRY };
      const token = randomSecret('dop_v1_hostile_');
      const env = { [`ENDPOINT_URL_${DO_ID}`]: s.url, [`ENDPOINT_AUTH_PARAMETER_${DO_ID}_APITOKEN`]: token, [`ENDPOINT_AUTH_SCHEME_${DO_ID}`]: 'Token' };
      const full = b64(`hostile-user:${password}`);
      return runCosign(`${reg.host}/hostile/app:1`, { inputs, env, cleanup: [s, reg], secrets: [token, password, full, full.slice(0, 12)] });
    },
  };
}

function secretCases(): HostileCase[] {
  const cut = JSON.stringify({ auths: { 'registry.digitalocean.com': { auth: b64('hostile-user:hostile-pass-0000') } } });
  return [
    doCase('401 whose message echoes the Authorization header', ['secrets'], { list: echo(401, 'unauthorized'), registry: echo(401, 'unauthorized') }),
    doCase('403 whose message echoes the token', ['secrets'], { list: echo(403, 'forbidden'), registry: echo(403, 'forbidden') }),
    doCase('500 on the active GC whose message echoes the token (retried)', ['secrets', 'time'], { active: echo(500, 'server_error') }, { idle: true }),
    doCase('404 registry whose message echoes the token', ['secrets'], {
      list: echo(404, 'not_found'),
      registry: echo(404, 'not_found'),
      account: echo(404, 'not_found'),
    }),
    {
      name: 'agent proxy with credentials (forwarding proxy, polite API)',
      classes: ['secrets'],
      exec: async () => {
        const s = await doServer();
        const p = await agentProxy('forwarding');
        return runWait(s.url, { env: p.env, secrets: p.secrets, cleanup: [s, p.proxy!], result: 'any' });
      },
    },
    {
      name: 'agent proxy with credentials on a closed port',
      classes: ['secrets', 'time'],
      idle: true,
      exec: async () => {
        const s = await doServer();
        const p = await agentProxy('closed');
        return runWait(s.url, { env: p.env, secrets: p.secrets, cleanup: [s] });
      },
    },
    credentialsCase('docker-credentials answer cut short mid-auth', (_q, r) => sendTruncated(r, 200, 'application/json', cut, cut.indexOf('"auth":"') + 20), [
      'secrets',
    ]),
    credentialsCase(
      `docker-credentials registry key with a command ${inj(0).label}`,
      (_q, r) => sendJson(r, 200, { auths: { [`registry.digitalocean.com${inj(0).text}`]: { auth: b64('hostile-user:hostile-pass-0000') } } }),
      ['commands', 'secrets'],
    ),
  ];
}

function sizeTimeCases(): HostileCase[] {
  return [
    doCase('active GC answers 64 MiB of JSON-looking body', ['size'], {
      active: (_q, r) => sendHuge(r, 200, 'application/json', '{"garbage_collection":{"uuid":"'),
    }),
    doCase(
      'GC list never ends',
      ['size', 'time'],
      { list: (_q, r) => sendEndless(r, 200, 'application/json', '{"garbage_collections":[', `{"uuid":"${FAKE_UUID}","status":"succeeded"},`) },
      { idle: true },
    ),
    doCase(
      'POST garbage-collection answers 64 MiB',
      ['size'],
      { start: (_q, r) => sendHuge(r, 201, 'application/json', '{"garbage_collection":{"uuid":"') },
      { gc: true },
    ),
    doCase(
      'active GC trickles 1 byte a second',
      ['time'],
      { active: (_q, r) => sendTrickle(r, 200, 'application/json', JSON.stringify({ garbage_collection: gcObject({ status: 'scanning manifests' }) })) },
      { idle: true },
    ),
    doCase('active GC sends headers, then nothing', ['time'], { active: (_q, r) => sendHeadersThenStall(r, 200, 'application/json') }, { idle: true }),
    doCase('POST garbage-collection is accepted and never answered', ['time'], { start: (_q, r) => stall(r) }, { gc: true, idle: true }),
    doCase(
      'a GC that never finishes (the task timeout must hold)',
      ['time'],
      { active: (_q, r) => sendJson(r, 200, { garbage_collection: gcObject({ status: 'scanning manifests' }) }) },
      { gc: true, idle: true },
    ),
    neverAnswersCase('API', (b) => runWait(b.url, { cleanup: [b] })),
  ];
}

function contentTypeCases(): HostileCase[] {
  const page404 = htmlPage(404, 'Not Found');
  return [
    doCase('a proxy\'s 404 HTML page for the active-GC endpoint (must not mean "no GC")', ['content-type'], {
      active: (_q, r) => sendRaw(r, 404, 'text/html', page404),
    }),
    doCase('active GC 200 text/html', ['content-type'], { active: (_q, r) => sendRaw(r, 200, 'text/html', htmlPage(200, 'OK')) }),
    doCase('active GC 404 with the DO error as text/plain', ['content-type'], {
      active: (_q, r) => sendRaw(r, 404, 'text/plain', JSON.stringify({ id: 'not_found', message: 'not found' })),
    }),
    doCase('active GC 404 application/json that is not a DigitalOcean error', ['content-type'], { active: (_q, r) => sendJson(r, 404, { ok: true }) }),
    doCase('active GC 404 with truncated JSON', ['content-type'], {
      active: (_q, r) => sendTruncated(r, 404, 'application/json', JSON.stringify({ id: 'not_found', message: 'garbage collection not found' })),
    }),
    doCase('active GC 200 with truncated JSON', ['content-type'], {
      active: (_q, r) => sendTruncated(r, 200, 'application/json', JSON.stringify({ garbage_collection: gcObject({ status: 'scanning manifests' }) })),
    }),
    doCase('GC list 200 text/html', ['content-type'], { list: (_q, r) => sendRaw(r, 200, 'text/html', htmlPage(200, 'OK')) }),
    doCase('registry 200 text/html login page', ['content-type'], {
      registry: (_q, r) => sendRaw(r, 200, 'text/html', htmlPage(200, 'Sign in')),
      list: (_q, r) => sendRaw(r, 200, 'text/html', htmlPage(200, 'Sign in')),
    }),
  ];
}

function redirectCases(): HostileCase[] {
  return [
    doCase('active GC redirect loop', ['redirects'], { active: (_q, r, seen) => sendRedirectLoop(r, seen) }),
    {
      name: 'active GC redirected to another server that says "no GC" (token must not follow)',
      classes: ['redirects', 'secrets'],
      exec: async () => {
        const other = await startHttp((_q, r) => notFound(r));
        const s = await doServer({
          active: (_q, r) => (r.writeHead(302, { Location: `${other.url}/v2/registries/${REGISTRY}/garbage-collection`, 'Content-Length': 0 }), r.end()),
        });
        const tokenSent = () =>
          other.requests.some((q) => q.headers['authorization']) ? 'secrets: the DigitalOcean token was sent to the redirect target' : undefined;
        return runWait(s.url, { cleanup: [s, other], extra: [tokenSent] });
      },
    },
  ];
}

table('DO API', [...commandCases(), ...secretCases(), ...sizeTimeCases(), ...contentTypeCases(), ...redirectCases()]);

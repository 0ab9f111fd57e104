// Hostile surface 2: the registry Cosign@1 resolves digests on (HEAD/GET /v2/<repo>/manifests/<tag>,
// the Bearer token realm), and the image references themselves (flag-like, malformed: refused in one
// line before any network request or child process).
import * as crypto from 'crypto';
import * as http from 'http';
import { HEADER_INJECTION, agentProxy, b64, hex64, inj, randomSecret, registryConnection, standIn } from './env';
import { HostileCase, table } from './properties';
import { REG_ID, runCosign } from './runners';
import {
  Handler,
  Hostile,
  SeenRequest,
  htmlPage,
  sendEndless,
  sendHuge,
  sendJson,
  sendRaw,
  sendRedirectLoop,
  sendTrickle,
  sendTruncated,
  neverAnswersCase,
  startHttp,
} from './servers';

type Route = 'head' | 'get' | 'token' | 'ping' | 'other';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
export const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: OCI,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${hex64('config')}`, size: 2 },
  layers: [],
});
const DIGEST = `sha256:${crypto.createHash('sha256').update(MANIFEST).digest('hex')}`;

function routeOf(seen: SeenRequest): Route {
  const p = new URL(seen.path, 'http://x').pathname;
  if (p === '/token') return 'token';
  if (p === '/v2/' || p === '/v2') return 'ping';
  if (/^\/v2\/.+\/manifests\/[^/]+$/.test(p)) return seen.method === 'HEAD' ? 'head' : 'get';
  return 'other';
}

function polite(route: Route, res: http.ServerResponse): void {
  if (route === 'head' || route === 'get') return sendRaw(res, 200, OCI, MANIFEST, { 'Docker-Content-Digest': DIGEST });
  if (route === 'token') return sendJson(res, 200, { token: 'polite-token' });
  if (route === 'ping') return sendJson(res, 200, {});
  sendJson(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] });
}

function registryServer(over: Partial<Record<Route, Handler>>): Promise<Hostile> {
  return startHttp((req, res, seen) => {
    const route = routeOf(seen);
    const h = over[route];
    if (h) h(req, res, seen);
    else polite(route, res);
  });
}

const auth = (seen: SeenRequest) => String(seen.headers['authorization'] ?? '');
const ref = (h: Hostile) => `${h.host}/hostile/app:1`;

/** A case against a registry with `over` behaviours; credentials from a dockerregistry connection. */
function regCase(name: string, classes: HostileCase['classes'], over: Partial<Record<Route, Handler>>, idle = false, proxy?: 'closed'): HostileCase {
  return {
    name,
    classes,
    idle,
    exec: async () => {
      const s = await registryServer(over);
      const password = randomSecret('reg-pw-');
      const pair = b64(`hostile:${password}`);
      const p = proxy ? await agentProxy(proxy) : undefined;
      const env = { ...registryConnection(REG_ID, `http://${s.host}`, 'hostile', password), ...p?.env };
      return runCosign(ref(s), { inputs: { dockerRegistryConnection: REG_ID }, env, secrets: [password, pair, ...(p?.secrets ?? [])], cleanup: [s] });
    },
  };
}

const basicChallenge = { 'WWW-Authenticate': 'Basic realm="hostile"' };

function commandCases(): HostileCase[] {
  return [
    regCase('Content-Type carrying a command (HEAD and GET)', ['commands', 'content-type'], {
      head: (_q, r) => sendRaw(r, 200, `${OCI}${HEADER_INJECTION}`, MANIFEST, { 'Docker-Content-Digest': DIGEST }),
      get: (_q, r) => sendRaw(r, 200, `${OCI}${HEADER_INJECTION}`, MANIFEST, { 'Docker-Content-Digest': DIGEST }),
    }),
    regCase('Docker-Content-Digest carrying a command', ['commands'], {
      head: (_q, r) => sendRaw(r, 200, OCI, MANIFEST, { 'Docker-Content-Digest': `${DIGEST}${HEADER_INJECTION}` }),
      get: (_q, r) => sendRaw(r, 200, OCI, MANIFEST, { 'Docker-Content-Digest': `sha256:${hex64('x')} ${HEADER_INJECTION}` }),
    }),
    regCase(`registry error code and message with commands (${inj(0).label}, ${inj(2).label})`, ['commands'], {
      head: (_q, r) => sendJson(r, 404, { errors: [{ code: `MANIFEST_UNKNOWN${inj(0).text}`, message: `unknown${inj(2).text}` }] }),
      get: (_q, r) => sendJson(r, 404, { errors: [{ code: `MANIFEST_UNKNOWN${inj(0).text}`, message: `unknown${inj(2).text}` }] }),
    }),
    tokenCase(`issued token with a command ${inj(1).label}`, ['commands', 'secrets'], (t) => ({ token: `${t}${inj(1).text}` })),
    tokenCase(`token realm answer echoing a command in access_token ${inj(4).label}`, ['commands', 'secrets'], (t) => ({ access_token: `${t}${inj(4).text}` })),
  ];
}

/** A Bearer registry whose token endpoint issues `body(token)` and whose manifests echo the Authorization. */
function tokenCase(name: string, classes: HostileCase['classes'], body: (token: string) => Record<string, string>): HostileCase {
  return {
    name,
    classes,
    exec: async () => {
      const issued = randomSecret('issued-token-');
      let realm = '';
      const s = await registryServer({
        token: (_q, r) => sendJson(r, 200, body(issued)),
        head: (_q, r, seen) =>
          sendJson(
            r,
            401,
            { errors: [{ code: 'UNAUTHORIZED', message: `token ${auth(seen)} rejected` }] },
            { 'WWW-Authenticate': `Bearer realm="${realm}",service="hostile"` },
          ),
        get: (_q, r, seen) =>
          sendJson(
            r,
            401,
            { errors: [{ code: 'UNAUTHORIZED', message: `token ${auth(seen)} rejected` }] },
            { 'WWW-Authenticate': `Bearer realm="${realm}",service="hostile"` },
          ),
      });
      realm = `${s.url}/token`;
      const password = randomSecret('reg-pw-');
      const env = registryConnection(REG_ID, `http://${s.host}`, 'hostile', password);
      return runCosign(ref(s), { inputs: { dockerRegistryConnection: REG_ID }, env, secrets: [issued, password, b64(`hostile:${password}`)], cleanup: [s] });
    },
  };
}

function echoBasic(status: number): Handler {
  return (_q, r, seen) =>
    sendJson(
      r,
      status,
      {
        errors: [
          { code: 'UNAUTHORIZED', message: `credentials ${auth(seen)} (${Buffer.from(auth(seen).replace(/^Basic /, ''), 'base64').toString()}) refused` },
        ],
      },
      basicChallenge,
    );
}

function secretCases(): HostileCase[] {
  return [
    regCase('401 Basic whose body echoes the Authorization it received (decoded too)', ['secrets'], { head: echoBasic(401), get: echoBasic(401) }),
    {
      name: 'token realm whose 403 echoes the Basic credentials',
      classes: ['secrets'],
      exec: async () => {
        let realm = '';
        const s = await registryServer({
          token: echoBasic(403),
          head: (_q, r) =>
            sendJson(r, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'auth' }] }, { 'WWW-Authenticate': `Bearer realm="${realm}",service="hostile"` }),
        });
        realm = `${s.url}/token`;
        const password = randomSecret('reg-pw-');
        const env = registryConnection(REG_ID, `http://${s.host}`, 'hostile', password);
        return runCosign(ref(s), { inputs: { dockerRegistryConnection: REG_ID }, env, secrets: [password, b64(`hostile:${password}`)], cleanup: [s] });
      },
    },
    regCase('agent proxy with credentials on a closed port', ['secrets', 'time'], {}, true, 'closed'),
  ];
}

function sizeTimeCases(): HostileCase[] {
  const noDigest = (_q: http.IncomingMessage, r: http.ServerResponse) => sendRaw(r, 200, OCI, MANIFEST);
  return [
    regCase('manifest GET answers 64 MiB', ['size'], { head: noDigest, get: (_q, r) => sendHuge(r, 200, OCI, '{"schemaVersion":2,"layers":[') }),
    regCase(
      'manifest GET never ends',
      ['size', 'time'],
      { head: noDigest, get: (_q, r) => sendEndless(r, 200, OCI, '{"schemaVersion":2,"layers":[', '{"digest":"sha256:0"},') },
      true,
    ),
    regCase('manifest GET trickles 1 byte a second', ['time'], { head: noDigest, get: (_q, r) => sendTrickle(r, 200, OCI, MANIFEST) }, true),
    regCase('HEAD never answered', ['time'], { head: () => undefined }, true),
    neverAnswersCase('registry', (b) => runCosign(ref(b), { cleanup: [b] })),
  ];
}

function contentTypeCases(): HostileCase[] {
  const noDigest = (_q: http.IncomingMessage, r: http.ServerResponse) => sendRaw(r, 200, OCI, MANIFEST);
  return [
    regCase('HEAD without a digest, GET 200 text/html page', ['content-type'], {
      head: noDigest,
      get: (_q, r) => sendRaw(r, 200, 'text/html', htmlPage(200, 'OK')),
    }),
    regCase('HEAD and GET 200 text/plain (a manifest as text)', ['content-type'], {
      head: (_q, r) => sendRaw(r, 200, 'text/plain', MANIFEST, { 'Docker-Content-Digest': DIGEST }),
      get: (_q, r) => sendRaw(r, 200, 'text/plain', MANIFEST, { 'Docker-Content-Digest': DIGEST }),
    }),
    regCase('HEAD 404 text/html page from a proxy', ['content-type'], {
      head: (_q, r) => sendRaw(r, 404, 'text/html', htmlPage(404, 'Not Found')),
      get: (_q, r) => sendRaw(r, 404, 'text/html', htmlPage(404, 'Not Found')),
    }),
    regCase('GET manifest truncated JSON', ['content-type'], { head: noDigest, get: (_q, r) => sendTruncated(r, 200, OCI, MANIFEST) }),
  ];
}

function redirectCases(): HostileCase[] {
  return [
    regCase('manifest redirect loop', ['redirects'], { head: (_q, r, seen) => sendRedirectLoop(r, seen), get: (_q, r, seen) => sendRedirectLoop(r, seen) }),
  ];
}

/** A malformed or flag-like reference: one-line failure, no request to our registry, no cosign call. */
function referenceCase(label: string, image: (h: Hostile) => string): HostileCase {
  return {
    name: `reference ${label}`,
    classes: ['references'],
    exec: async () => {
      const s = await registryServer({});
      const cosign = standIn('echo "cosign stand-in ran" >&2; exit 1');
      return runCosign(image(s), { cleanup: [s], networkRequests: () => s.requests.length, childCalls: () => cosign.calls() }, cosign.path);
    },
  };
}

function referenceCases(): HostileCase[] {
  return [
    referenceCase("'--output-signature=./x'", () => '--output-signature=./x'),
    referenceCase("'-x.y/z'", () => '-x.y/z'),
    referenceCase("'host:99999/a/b:1' (port out of range)", () => 'host:99999/a/b:1'),
    referenceCase("'a.b?x=1/repo:1' (query in the host)", () => 'a.b?x=1/repo:1'),
    referenceCase('with a newline-escaped %0A##vso[ command', (h) => `${h.host}/hostile/app:1%0A##vso[task.setvariable variable=pwned]1`),
    referenceCase('with a backslash-n escaped ##vso[ command', (h) => `${h.host}/hostile/app:1\\n##vso[task.uploadfile]/etc/passwd`),
    referenceCase('with a mid-line ##vso[ command in the tag', (h) => `${h.host}/hostile/app:##vso[task.setvariable variable=pwned]1`),
  ];
}

table('registry', [...commandCases(), ...secretCases(), ...sizeTimeCases(), ...contentTypeCases(), ...redirectCases(), ...referenceCases()]);

// Hostile surface 3: the Azure DevOps build timeline DoRegistryGcWait@1 reads for waitForStages
// (GET <collection>/<project>/_apis/build/builds/<id>/timeline), without a DigitalOcean connection.
import * as http from 'http';
import { HEADER_INJECTION, INJECTIONS, agentProxy, inj } from './env';
import { HostileCase, table } from './properties';
import { runTimeline } from './runners';
import {
  Handler,
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

interface Stage {
  identifier: string;
  name?: string;
  state: string;
  result: string | null;
}

const stage = (s: Stage) => ({
  id: `id-${s.identifier}`,
  parentId: null,
  type: 'Stage',
  name: s.name ?? s.identifier,
  identifier: s.identifier,
  state: s.state,
  result: s.result,
  order: 1,
  attempt: 1,
});
const BUILD_DONE: Stage = { identifier: 'Build', state: 'completed', result: 'succeeded' };
const SIGN: Stage = { identifier: 'Sign', state: 'inProgress', result: null };

function records(stages: Stage[]): Record<string, unknown> {
  const recs = stages.map(stage);
  return { records: recs, count: recs.length, id: 'timeline', changeId: 1 };
}

const isTimeline = (seen: SeenRequest) => /^\/hostile\/_apis\/build\/builds\/42\/timeline\/?(\?|$)/.test(seen.path);

/** A timeline server: `answer` for the timeline path, a JSON 404 elsewhere. */
function timelineCase(
  name: string,
  classes: HostileCase['classes'],
  answer: Handler,
  opts: { result?: 'any' | 'Failed'; idle?: boolean; proxy?: 'forwarding' | 'closed' } = {},
): HostileCase {
  return {
    name,
    classes,
    idle: opts.idle,
    exec: async () => {
      const s = await startHttp((req, res, seen) => (isTimeline(seen) ? answer(req, res, seen) : sendJson(res, 404, { message: 'not found' })));
      const p = opts.proxy ? await agentProxy(opts.proxy) : undefined;
      return runTimeline(s.url, { cleanup: [s, ...(p?.proxy ? [p.proxy] : [])], result: opts.result, env: p?.env, secrets: p?.secrets });
    },
  };
}

const stages =
  (list: Stage[]): Handler =>
  (_q, r) =>
    sendJson(r, 200, records(list));
const auth = (seen: SeenRequest) => String(seen.headers['authorization'] ?? '');
const echo =
  (status: number): Handler =>
  (_q, r, seen) =>
    sendJson(r, status, { $id: '1', message: `Access denied for ${auth(seen)}`, typeKey: 'UnauthorizedRequestException' });

function commandCases(): HostileCase[] {
  return [
    timelineCase(`stage display name with a command ${inj(0).label}`, ['commands'], stages([{ ...BUILD_DONE, name: `Build${inj(0).text}` }, SIGN]), {
      result: 'any',
    }),
    timelineCase(
      `stage state with a command ${inj(1).label}`,
      ['commands'],
      stages([{ ...BUILD_DONE, state: `inProgress${inj(1).text}`, result: null }, SIGN]),
      { result: 'any', idle: true },
    ),
    timelineCase(`stage result with a command ${inj(2).label}`, ['commands'], stages([{ ...BUILD_DONE, result: `succeeded${inj(2).text}` }, SIGN]), {
      result: 'any',
    }),
    timelineCase(
      `unknown stage: the listed names carry a command ${inj(3).label}`,
      ['commands'],
      stages([{ identifier: `Compile${inj(3).text}`, state: 'completed', result: 'succeeded' }, SIGN]),
    ),
    timelineCase(
      `unknown stage: identifier with a command ${inj(4).label}`,
      ['commands'],
      stages([{ identifier: `Test${inj(4).text}`, name: `Test${inj(5).text}`, state: 'completed', result: 'succeeded' }, SIGN]),
    ),
    timelineCase(
      `stage in progress, its display name carries a command ${inj(6).label}`,
      ['commands'],
      stages([{ identifier: 'Build', name: `Build${inj(6).text}`, state: 'inProgress', result: null }, SIGN]),
      { idle: true },
    ),
    timelineCase(
      'Content-Type carrying a command (500, retried)',
      ['commands', 'content-type'],
      (_q, r) => sendRaw(r, 500, `application/json; x=${HEADER_INJECTION}`, JSON.stringify({ message: 'server error' })),
      { idle: true },
    ),
    ...INJECTIONS.slice(5, 6).map((x) =>
      timelineCase(`error message with a command ${x.label} (500, retried)`, ['commands'], (_q, r) => sendJson(r, 500, { message: `server error${x.text}` }), {
        idle: true,
      }),
    ),
  ];
}

function secretCases(): HostileCase[] {
  return [
    timelineCase('401 whose body echoes the Authorization header', ['secrets'], echo(401)),
    timelineCase('404 whose body echoes the Authorization header', ['secrets'], echo(404)),
    timelineCase('500 whose body echoes the token (retried)', ['secrets', 'time'], echo(500), { idle: true }),
    timelineCase('agent proxy with credentials (forwarding proxy, polite timeline)', ['secrets'], stages([BUILD_DONE, SIGN]), {
      result: 'any',
      proxy: 'forwarding',
    }),
  ];
}

function sizeTimeCases(): HostileCase[] {
  return [
    timelineCase('64 MiB timeline', ['size'], (_q, r) => sendHuge(r, 200, 'application/json', '{"records":[')),
    timelineCase('endless timeline', ['size', 'time'], (_q, r) => sendEndless(r, 200, 'application/json', '{"records":[', '{"type":"Phase","name":"x"},'), {
      idle: true,
    }),
    timelineCase(
      'timeline trickles 1 byte a second',
      ['time'],
      (_q, r) => sendTrickle(r, 200, 'application/json', JSON.stringify(records([BUILD_DONE, SIGN]))),
      { idle: true },
    ),
    neverAnswersCase('collection', (b) => runTimeline(b.url, { cleanup: [b] })),
  ];
}

function contentTypeCases(): HostileCase[] {
  const signIn =
    (status: number): Handler =>
    (_q: http.IncomingMessage, r: http.ServerResponse) =>
      sendRaw(r, status, 'text/html; charset=utf-8', htmlPage(status, 'Azure DevOps Services | Sign In'));
  return [
    timelineCase('200 text/html page', ['content-type'], signIn(200)),
    timelineCase('203 sign-in page (an expired token)', ['content-type'], signIn(203)),
    timelineCase('200 text/plain with timeline JSON', ['content-type'], (_q, r) => sendRaw(r, 200, 'text/plain', JSON.stringify(records([BUILD_DONE, SIGN])))),
    timelineCase('truncated JSON', ['content-type'], (_q, r) => sendTruncated(r, 200, 'application/json', JSON.stringify(records([BUILD_DONE, SIGN])))),
    timelineCase('records is not a list', ['content-type'], (_q, r) => sendJson(r, 200, { records: 'Build completed' })),
  ];
}

function redirectCases(): HostileCase[] {
  return [timelineCase('redirect loop', ['redirects'], (_q, r, seen) => sendRedirectLoop(r, seen))];
}

table('timeline', [...commandCases(), ...secretCases(), ...sizeTimeCases(), ...contentTypeCases(), ...redirectCases()]);

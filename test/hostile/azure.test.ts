// Hostile surfaces 6 to 8: the Azure DevOps OIDC endpoint, Entra ID's token endpoint and Key Vault,
// as Cosign@1 keyVaultKey reads them (through the agent's proxy, trusting the agent's CA). Each
// case starts its own Azure emulator whose answer on one endpoint is hostile: tokens echoed in error
// text, agent commands in messages and headers, trickles, stalls, oversized and mis-typed answers,
// a challenge for another audience, a key or a token of the wrong shape. The task must fail closed
// in one line, print no command and no token (every token the emulator issued is a secret), keep to
// its budget and leave nothing behind.
import * as http from 'http';
import { AzureEndpoint, AzureFault, entraError, keyVaultError } from '../harness/emulator/azure';
import { AzureFixture, azurePipelineEnv, azureTestCa, startAzureFixture } from '../harness/azure-env';
import { tools } from '../harness/paths';
import { runTask } from '../harness/run-task';
import { registerSecret } from '../harness/secrets';
import { TestCa } from '../harness/tls';
import { HEADER_INJECTION, INJECTIONS, agent, inj } from './env';
import { CaseOutcome, HostileCase, Surface, killAfterMs, table } from './properties';
import { htmlPage, sendHuge, sendJson, sendRaw, sendTrickle, stall } from './servers';
import { COSIGN_TASK } from './runners';

/** maxAttempts 2 × attemptTimeoutSeconds 5 + one backoff of at most 1 s. */
const BUDGET_S = 11;
let ca: TestCa | undefined;

type Answer = AzureFault['answer'];
/** What the cause of the failure must name, per endpoint under attack. */
const SURFACE_NAMED: Record<AzureEndpoint, RegExp> = {
  oidc: /Azure DevOps/,
  entra: /Entra ID/,
  'kv-get': /Key Vault|vault\.azure\.net|audience/,
  'kv-sign': /Key Vault/,
  'kv-challenge': /Key Vault/,
};

async function runAzureCase(
  endpoint: AzureEndpoint,
  answer: Answer,
  opts: { times?: number; authorized?: boolean; setup?: (f: AzureFixture) => void } = {},
): Promise<CaseOutcome> {
  ca ??= azureTestCa();
  if (!ca) throw new Error('openssl is needed for the test CA');
  const f = (await startAzureFixture({}, ca))!;
  try {
    const key = f.emu.addEcKey('hostile');
    f.emu.fault(endpoint, { times: opts.times ?? Infinity, authorized: opts.authorized ?? endpoint.startsWith('kv-'), answer });
    opts.setup?.(f);
    const a = agent();
    const inputs = {
      command: 'sign',
      images: `127.0.0.1:9/hostile/app@sha256:${'c'.repeat(64)}`,
      keyVaultKey: f.emu.keyUrl(key.name),
      azureSubscription: f.emu.serviceConnectionId,
      cosignPath: tools.cosign3,
      tlogUpload: 'false',
      allowHttpRegistry: 'true',
      gcGuard: 'false',
      maxAttempts: '2',
      attemptTimeoutSeconds: '5',
      initialBackoffSeconds: '1',
      maxBackoffSeconds: '1',
      totalTimeoutMinutes: '1',
    };
    const run = await runTask(COSIGN_TASK, { inputs, env: { ...a.env, ...azurePipelineEnv(f) }, timeoutMs: killAfterMs(BUDGET_S) });
    const secrets = [f.emu.systemAccessToken, f.proxyPassword, ...f.emu.issued];
    for (const s of secrets) registerSecret(s);
    // Failed at the surface under attack, naming it, before any image: never believed and carried on.
    const cause = (m: string) => m.replace(/^.*? failed after \d+ attempt\(s\): /, '');
    const atSurface = (r: typeof run) =>
      SURFACE_NAMED[endpoint].test(cause(r.resultMessage)) && !/Resolving /.test(r.resultMessage)
        ? undefined
        : `fail closed: the failure does not name the surface under attack: ${r.resultMessage.slice(0, 200)}`;
    return { run, expect: { task: COSIGN_TASK, secrets, budgetS: BUDGET_S, agentTemp: a.temp, extra: [atSurface] } };
  } finally {
    await f.stop();
  }
}

const auth = (q: http.IncomingMessage) => String(q.headers.authorization ?? '');
const form = (body: string, name: string) => new URLSearchParams(body).get(name) ?? '';
const kase = (name: string, classes: HostileCase['classes'], endpoint: AzureEndpoint, answer: Answer, idle = false): HostileCase => ({
  name,
  classes,
  idle,
  exec: () => runAzureCase(endpoint, answer),
});

/** The cases every surface gets: commands in its error text, trickle, stall, oversized, a web page. */
function common(surface: string, endpoint: AzureEndpoint, errorBody: (text: string) => unknown, okPrefix: string): HostileCase[] {
  return [
    ...INJECTIONS.slice(0, 3).map((x) =>
      kase(`${surface} 400 whose message carries a command ${x.label}`, ['commands'], endpoint, (_q, r) => sendJson(r, 400, errorBody(`bad request${x.text}`))),
    ),
    kase(
      `${surface} 503 whose message carries a command ${inj(5).label} (retried)`,
      ['commands', 'time'],
      endpoint,
      (_q, r) => sendJson(r, 503, errorBody(`busy${inj(5).text}`)),
      true,
    ),
    kase(`${surface} Content-Type carrying a command`, ['commands', 'content-type'], endpoint, (_q, r) =>
      sendRaw(r, 400, `application/json; x=${HEADER_INJECTION}`, JSON.stringify(errorBody('no'))),
    ),
    kase(`${surface} answer trickles 1 byte a second`, ['time'], endpoint, (_q, r) => sendTrickle(r, 200, 'application/json', okPrefix), true),
    kase(`${surface} never answers`, ['time'], endpoint, (_q, r) => stall(r), true),
    kase(`${surface} 64 MiB answer`, ['size'], endpoint, (_q, r) => sendHuge(r, 200, 'application/json', okPrefix)),
    kase(`${surface} 200 text/html sign-in page`, ['content-type'], endpoint, (_q, r) =>
      sendRaw(r, 200, 'text/html; charset=utf-8', htmlPage(200, 'Sign in to your account')),
    ),
  ];
}

function oidcCases(): HostileCase[] {
  const adoError = (message: string) => ({ $id: '1', message, typeKey: 'InvalidOperationException', errorCode: 0 });
  return [
    ...common('OIDC', 'oidc', adoError, '{"oidcToken": "'),
    kase('OIDC 401 whose message echoes the job access token', ['secrets'], 'oidc', (q, r) => sendJson(r, 401, adoError(`token ${auth(q)} refused`))),
    kase('OIDC 200 whose oidcToken is a command, not a JWT', ['commands'], 'oidc', (_q, r) => sendJson(r, 200, { oidcToken: `x${inj(0).text}` })),
    kase('OIDC 200 whose oidcToken is an object', ['content-type'], 'oidc', (_q, r) => sendJson(r, 200, { oidcToken: { jwt: 'a.b.c' } })),
  ];
}

function entraCases(): HostileCase[] {
  return [
    ...common('Entra ID', 'entra', (t) => entraError('invalid_request', 90000, t), '{"access_token": "'),
    kase('Entra ID 400 whose description echoes the client assertion (the OIDC token)', ['secrets'], 'entra', (_q, r, body) =>
      sendJson(r, 400, entraError('invalid_client', 700211, `No matching federated identity record for assertion ${form(body, 'client_assertion')}`)),
    ),
    kase('Entra ID 200 with a token that is a command', ['commands'], 'entra', (_q, r) =>
      sendJson(r, 200, { token_type: 'Bearer', expires_in: 3599, access_token: `eyJ${inj(1).text}` }),
    ),
    kase('Entra ID 200 with expires_in a command', ['commands', 'content-type'], 'entra', (_q, r) =>
      sendJson(r, 200, { token_type: 'Bearer', expires_in: `3599${inj(2).text}`, access_token: 'eyJhbGciOi.eyJhdWQiOi.c2lnbmF0dXJl' }),
    ),
  ];
}

function keyVaultCases(): HostileCase[] {
  return [
    ...common('Key Vault', 'kv-get', (t) => keyVaultError('BadParameter', t), '{"key": {"kid": "'),
    kase("Key Vault 403 whose message echoes the caller's access token", ['secrets'], 'kv-get', (q, r) =>
      sendJson(r, 403, keyVaultError('Forbidden', `Caller ${auth(q)} is not authorized`, 'ForbiddenByRbac')),
    ),
    kase('Key Vault key whose kid names another key, with a command', ['commands'], 'kv-get', (_q, r) =>
      sendJson(r, 200, {
        key: { kid: `https://cgg-signing.vault.azure.net/keys/other/${'a'.repeat(32)}${inj(0).text}`, kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' },
      }),
    ),
    kase('Key Vault key whose kty carries a command', ['commands'], 'kv-get', (q, r) => {
      const kid = `https://${String(q.headers.host).split(':')[0]}/keys/hostile/${'b'.repeat(32)}`;
      sendJson(r, 200, { key: { kid, kty: `EC${inj(3).text}`, crv: 'P-256', x: 'AA', y: 'AA' }, attributes: { enabled: true } });
    }),
    kase('Key Vault key whose x and y are not a point', ['content-type'], 'kv-get', (q, r) => {
      const kid = `https://${String(q.headers.host).split(':')[0]}/keys/hostile/${'d'.repeat(32)}`;
      sendJson(r, 200, { key: { kid, kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'BBBB' }, attributes: { enabled: true } });
    }),
  ];
}

/** The challenge itself is hostile: it asks for a token of another audience, or carries a command. */
function challengeCases(): HostileCase[] {
  const challenge = (header: string) => (_q: http.IncomingMessage, r: http.ServerResponse) =>
    sendJson(r, 401, keyVaultError('Unauthorized', 'AKV10000: missing token'), { 'WWW-Authenticate': header });
  return [
    {
      name: 'Key Vault challenge names another audience (attacker.example): no token is asked for',
      classes: ['secrets'],
      exec: () =>
        runAzureCase('kv-get', challenge('Bearer authorization="https://login.microsoftonline.com/t", resource="https://attacker.example"'), {
          times: 1,
          authorized: false,
        }),
    },
    {
      name: 'Key Vault challenge header carries a command',
      classes: ['commands'],
      exec: () =>
        runAzureCase('kv-get', challenge(`Bearer authorization="${HEADER_INJECTION}", resource="https://x.example/${HEADER_INJECTION}"`), {
          times: 1,
          authorized: false,
        }),
    },
  ];
}

const surfaces: Array<[Surface, HostileCase[]]> = [
  ['Azure DevOps OIDC', oidcCases()],
  ['Entra ID', entraCases()],
  ['Key Vault', [...keyVaultCases(), ...challengeCases()]],
];
for (const [surface, cases] of surfaces) table(surface, cases);

// Tokens for Key Vault through workload identity federation: the job's OIDC token for the service
// connection (POST System.OidcRequestUri?api-version=7.1&serviceConnectionId=<id>, with the job's
// access token: {"oidcToken": <JWT>}), exchanged with Entra ID (POST <authority>/<tenant>/oauth2/
// v2.0/token, client credentials with the OIDC token as a jwt-bearer client assertion) for an access
// token of the scope Key Vault's challenge names. Both are secrets from the moment they arrive
// (registered with the agent and redacted), never written to a file or a child's argv. The access
// token is reused until REFRESH_MARGIN_MS before it expires, then a new OIDC token is asked for and
// exchanged again (the OIDC token itself lives about ten minutes, so it is never kept).
import {
  HttpFailure,
  HttpRequest,
  HttpResponse,
  HttpStatusError,
  UnexpectedAnswerError,
  jsonBody,
  jsonErrorObject,
  request,
  retryAfterMs,
} from '../../platform/http';
import { addSecret, quote } from '../../platform/output';
import { AzureConnection } from './connection';

/** An access token is renewed when less than this is left of it (AzureCLI@2 renews every 8 of 10 minutes). */
export const REFRESH_MARGIN_MS = 5 * 60_000;
export const OIDC_API_VERSION = '7.1';
/** A JWT: three base64url parts. */
const JWT = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$/;
const MAX_TOKEN_CHARS = 32 * 1024;

export interface RequestContext {
  signal: AbortSignal;
  timeoutMs: number;
}

/** A refusal that names the cause; permanent unless the status is one worth retrying. */
export class AzureAnswerError extends HttpStatusError {
  constructor(
    message: string,
    status: number,
    readonly hint?: string,
    retryAfter?: number,
  ) {
    super(message, status, retryAfter);
    this.name = 'AzureAnswerError';
  }
}

/** request(), with a failure to answer (timeout, stall, cap, network) naming the service it was asked of. */
export async function azureRequest(service: string, req: HttpRequest): Promise<HttpResponse> {
  try {
    return await request(req);
  } catch (err) {
    if (err instanceof HttpFailure) throw new HttpFailure(`${service}: ${err.message}`, err.reason, err.transient);
    throw err;
  }
}

function firstLine(text: unknown, max = 240): string {
  return quote(String(text ?? '').split(/\r?\n/)[0], max);
}

function tokenField(body: unknown, field: string, what: string): string {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;
  if (typeof v !== 'string' || v.length > MAX_TOKEN_CHARS || !JWT.test(v)) throw new UnexpectedAnswerError(`${what} answered without a token in '${field}'`);
  addSecret(v, { registerWithAgent: true });
  return v;
}

function oidcFailure(res: HttpResponse, conn: AzureConnection): AzureAnswerError {
  const message = jsonErrorObject(res)?.['message'];
  const said = message ? `: ${firstLine(message)}` : '';
  const why =
    res.status === 401 || res.status === 403
      ? "the job's access token may not request OIDC tokens"
      : res.status === 400 || res.status === 404
        ? `service connection ${quote(conn.id, 60)} is unknown or not authorized for this pipeline`
        : 'the Azure DevOps OIDC endpoint failed';
  return new AzureAnswerError(
    `Azure DevOps answered ${res.status} to the OIDC token request (${why})${said}`,
    res.status,
    undefined,
    retryAfterMs(res.headers),
  );
}

/** What AADSTS code means for the user. */
function entraHint(code: number | undefined): string | undefined {
  if (code === 700024) return "the pipeline's OIDC token expired before Entra ID saw it: check the agent's clock";
  if (code === 700211 || code === 70021 || code === 700213 || code === 700212) {
    return "the app registration has no federated credential for this service connection's issuer and subject: recreate the connection or add the credential";
  }
  if (code === 700016) return "the service connection's application does not exist in the tenant";
  if (code === 90002) return "the service connection's tenant does not exist";
  return undefined;
}

function entraFailure(res: HttpResponse): AzureAnswerError {
  const body = jsonErrorObject(res);
  const codes = Array.isArray(body?.['error_codes']) ? (body['error_codes'] as unknown[]) : [];
  const code = typeof codes[0] === 'number' ? codes[0] : undefined;
  const desc = body?.['error_description'];
  // AADSTS descriptions end with trace and correlation ids: the first sentence is the cause.
  const said = desc ? `: ${firstLine(String(desc).replace(/\s*Trace ID:.*$/s, ''))}` : body?.['error'] ? `: ${firstLine(body['error'])}` : '';
  const hint = entraHint(code);
  return new AzureAnswerError(
    `Entra ID answered ${res.status} to the token exchange${said}${hint ? ` (${hint})` : ''}`,
    res.status,
    hint,
    retryAfterMs(res.headers),
  );
}

export class AzureTokenSource {
  private cached?: { token: string; scope: string; expiresAt: number };
  /** Token exchanges done, for the log and tests. */
  exchanges = 0;

  constructor(
    readonly conn: AzureConnection,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the access token held has more than REFRESH_MARGIN_MS left (undefined: none held yet). */
  fresh(): boolean | undefined {
    return this.cached ? this.cached.expiresAt - this.now() > REFRESH_MARGIN_MS : undefined;
  }

  /** The job's OIDC token for the service connection. */
  async oidcToken(ctx: RequestContext): Promise<string> {
    const url = new URL(this.conn.oidcRequestUri);
    url.searchParams.set('api-version', OIDC_API_VERSION);
    url.searchParams.set('serviceConnectionId', this.conn.id);
    const res = await azureRequest(`The Azure DevOps OIDC endpoint (${url.host})`, {
      method: 'POST',
      url: url.href,
      headers: { Authorization: `Bearer ${this.conn.accessToken}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: '{}',
      kind: 'azure',
      ...ctx,
    });
    if (res.status !== 200) throw oidcFailure(res, this.conn);
    return tokenField(jsonBody(res, 'The Azure DevOps OIDC endpoint'), 'oidcToken', 'The Azure DevOps OIDC endpoint');
  }

  /** An access token for `scope` (Key Vault's), from the cache while it has REFRESH_MARGIN_MS left. */
  async accessToken(scope: string, ctx: RequestContext, options: { renew?: boolean } = {}): Promise<string> {
    const c = this.cached;
    if (c && !options.renew && c.scope === scope && c.expiresAt - this.now() > REFRESH_MARGIN_MS) return c.token;
    const assertion = await this.oidcToken(ctx);
    const form = new URLSearchParams({
      client_id: this.conn.clientId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      grant_type: 'client_credentials',
      scope,
    });
    const res = await azureRequest(`Entra ID (${new URL(this.conn.authorityHost).host})`, {
      method: 'POST',
      url: `${this.conn.authorityHost}${encodeURIComponent(this.conn.tenantId)}/oauth2/v2.0/token`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: form.toString(),
      kind: 'azure',
      ...ctx,
    });
    if (res.status !== 200) throw entraFailure(res);
    const body = jsonBody(res, 'Entra ID');
    const token = tokenField(body, 'access_token', 'Entra ID');
    const expiresIn = (body as Record<string, unknown>)['expires_in'];
    const seconds = typeof expiresIn === 'number' ? expiresIn : typeof expiresIn === 'string' && /^\d{1,7}$/.test(expiresIn) ? Number(expiresIn) : NaN;
    if (!Number.isFinite(seconds) || seconds <= 0) throw new UnexpectedAnswerError("Entra ID answered without a valid 'expires_in'");
    this.cached = { token, scope, expiresAt: this.now() + seconds * 1000 };
    this.exchanges++;
    return token;
  }
}

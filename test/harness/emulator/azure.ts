// The Azure side of keyVaultKey signing, emulated over TLS (a test CA's leaf) on 127.0.0.1, one
// listener routed by host name, as the real services answer (facts and sources:
// docs/AZURE-KEY-VAULT.md):
//  - dev.azure.com: the pipeline's OIDC token endpoint (System.OidcRequestUri): POST
//    ?api-version=7.1&serviceConnectionId=<id> with the job's access token -> {"oidcToken": <JWT>};
//  - login.microsoftonline.com: Entra ID's v2.0 token endpoint (client credentials with a federated
//    client assertion), its OpenID metadata and instance discovery (what MSAL reads first);
//  - <vault>.vault.azure.net: Key Vault's keys get and sign (api-version required), its 401 challenge
//    (WWW-Authenticate Bearer authorization=..., resource=...), its error shapes, 403 without the
//    role, and whatever a test queues (429 with Retry-After, 5xx, hostile answers).
// The names are real ones: only our forwarding proxy resolves them (to this listener), so the tasks
// and the Azure SDK reach them as a self-hosted agent reaches Azure through its corporate proxy.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import { readBody } from './http';

export type AzureEndpoint = 'oidc' | 'entra' | 'kv-get' | 'kv-sign' | 'kv-challenge';

/** A queued answer: the handler answers the request itself (any status, headers, pace or size). */
export interface AzureFault {
  times?: number;
  /** Only requests that carry an Authorization header take it (Key Vault: after the challenge). */
  authorized?: boolean;
  answer(req: http.IncomingMessage, res: http.ServerResponse, body: string): void | Promise<void>;
}

export interface AzureRequest {
  at: number;
  endpoint: AzureEndpoint | 'metadata' | 'other';
  method: string;
  host: string;
  path: string;
  status: number;
}

export interface AzureEmulatorOptions {
  tls: { certFile: string; keyFile: string };
  vaultName?: string;
  /** Lifetime of issued OIDC tokens (default 600 s, like Azure DevOps'); <= 0 issues expired ones. */
  oidcLifetimeSeconds?: number;
  /** Lifetime of issued Key Vault access tokens (default 3599 s). */
  accessTokenLifetimeSeconds?: number;
  /** Added before every Key Vault answer (the bench's 30 ms). */
  keyVaultLatencyMs?: number;
}

interface VaultKey {
  name: string;
  version: string;
  kty: 'EC' | 'RSA';
  crv?: string;
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
  keyOps: string[];
  enabled: boolean;
}

export interface AddedKey {
  name: string;
  version: string;
  kid: string;
  /** The public half, SPKI PEM (what `cosign verify --key` takes). */
  publicPem: string;
}

export const AZURE_HOSTS = { devops: 'dev.azure.com', login: 'login.microsoftonline.com' };
const VAULT_RESOURCE = 'https://vault.azure.net';
const FEDERATION_AUDIENCE = 'api://AzureADTokenExchange';
const JSON_TYPE = 'application/json; charset=utf-8';

function b64url(buf: Buffer | string): string {
  return Buffer.from(buf).toString('base64url');
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): number {
  if (res.destroyed) return status;
  const buf = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': String(buf.length), ...headers });
  res.end(buf);
  return status;
}

/** Key Vault's error shape: {"error": {"code", "message", "innererror"?}}. */
export function keyVaultError(code: string, message: string, inner?: string): unknown {
  return { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } };
}

/** Entra ID's error shape (RFC 6749 error plus AADSTS code, trace and correlation ids). */
export function entraError(error: string, code: number, description: string): unknown {
  return {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${crypto.randomUUID()} Correlation ID: ${crypto.randomUUID()} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date().toISOString(),
    trace_id: crypto.randomUUID(),
    correlation_id: crypto.randomUUID(),
    error_uri: `https://${AZURE_HOSTS.login}/error?code=${code}`,
  };
}

class Jwts {
  private readonly key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

  issue(claims: Record<string, unknown>): string {
    const head = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'emulator' }));
    const body = b64url(JSON.stringify(claims));
    const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), { key: this.key.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${head}.${body}.${b64url(sig)}`;
  }

  /** The claims of a token this issuer signed, or undefined. */
  verify(token: string): Record<string, unknown> | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const ok = crypto.verify(
      'sha256',
      Buffer.from(`${parts[0]}.${parts[1]}`),
      { key: this.key.publicKey, dsaEncoding: 'ieee-p1363' },
      Buffer.from(parts[2], 'base64url'),
    );
    if (!ok) return undefined;
    try {
      return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }
}

export class AzureEmulator {
  readonly tenantId = crypto.randomUUID();
  readonly clientId = crypto.randomUUID();
  readonly serviceConnectionId = crypto.randomUUID();
  readonly systemAccessToken = `ado-job-token-${crypto.randomBytes(12).toString('hex')}`;
  readonly org = 'cgg-org';
  readonly projectId = crypto.randomUUID();
  readonly vaultName: string;
  readonly requests: AzureRequest[] = [];
  /** Every token issued (OIDC and access tokens), for secret scans. */
  readonly issued: string[] = [];
  port = 0;
  /** Whether the service principal holds Key Vault Crypto User on the vault. */
  cryptoUser = true;
  oidcLifetimeSeconds: number;
  accessTokenLifetimeSeconds: number;
  keyVaultLatencyMs: number;

  private readonly oidcJwts = new Jwts();
  private readonly accessJwts = new Jwts();
  private readonly keys = new Map<string, VaultKey[]>();
  private readonly faults = new Map<AzureEndpoint, AzureFault[]>();
  private readonly sockets = new Set<net.Socket>();
  private server?: https.Server;

  constructor(private readonly options: AzureEmulatorOptions) {
    this.vaultName = options.vaultName ?? 'cgg-signing';
    this.oidcLifetimeSeconds = options.oidcLifetimeSeconds ?? 600;
    this.accessTokenLifetimeSeconds = options.accessTokenLifetimeSeconds ?? 3599;
    this.keyVaultLatencyMs = options.keyVaultLatencyMs ?? 0;
  }

  get vaultHost(): string {
    return `${this.vaultName}.vault.azure.net`;
  }
  get vaultUrl(): string {
    return `https://${this.vaultHost}`;
  }
  get authorityHost(): string {
    return `https://${AZURE_HOSTS.login}/`;
  }
  /** System.OidcRequestUri of the job. */
  get oidcRequestUri(): string {
    return `https://${AZURE_HOSTS.devops}/${this.org}/${this.projectId}/_apis/distributedtask/hubs/build/plans/${crypto.randomUUID()}/jobs/${crypto.randomUUID()}/oidctoken`;
  }
  /** Names only our proxy resolves, each to this listener. */
  get proxyHosts(): Record<string, string> {
    const to = `127.0.0.1:${this.port}`;
    return { [AZURE_HOSTS.devops]: to, [AZURE_HOSTS.login]: to, [this.vaultHost]: to };
  }

  keyUrl(name: string, version?: string): string {
    return `${this.vaultUrl}/keys/${name}${version ? `/${version}` : ''}`;
  }

  /** A new version of an EC key (P-256 unless said), held only here. */
  addEcKey(name: string, crv: 'P-256' | 'P-384' = 'P-256', keyOps = ['sign', 'verify']): AddedKey {
    const pair = crypto.generateKeyPairSync('ec', { namedCurve: crv === 'P-256' ? 'prime256v1' : 'secp384r1' });
    return this.store({ name, version: crypto.randomBytes(16).toString('hex'), kty: 'EC', crv, ...pair, keyOps, enabled: true });
  }

  addRsaKey(name: string): AddedKey {
    const pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    return this.store({ name, version: crypto.randomBytes(16).toString('hex'), kty: 'RSA', ...pair, keyOps: ['sign', 'verify'], enabled: true });
  }

  private store(k: VaultKey): AddedKey {
    this.keys.set(k.name, [...(this.keys.get(k.name) ?? []), k]);
    return { name: k.name, version: k.version, kid: this.keyUrl(k.name, k.version), publicPem: k.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
  }

  fault(endpoint: AzureEndpoint, fault: AzureFault): void {
    this.faults.set(endpoint, [...(this.faults.get(endpoint) ?? []), { ...fault, times: fault.times ?? 1 }]);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  count(endpoint: AzureRequest['endpoint']): number {
    return this.requests.filter((r) => r.endpoint === endpoint).length;
  }

  async start(): Promise<void> {
    const tls = { cert: fs.readFileSync(this.options.tls.certFile), key: fs.readFileSync(this.options.tls.keyFile) };
    this.server = https.createServer(tls, (req, res) => {
      res.on('error', () => undefined);
      void this.route(req, res).catch(() => res.destroy());
    });
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const host = String(req.headers.host ?? '')
      .split(':')[0]
      .toLowerCase();
    const url = new URL(req.url ?? '/', `https://${host}`);
    const body = await readBody(req, 1 << 20).catch(() => '');
    const rec: AzureRequest = { at: Date.now(), endpoint: 'other', method: req.method ?? '', host, path: url.pathname, status: 0 };
    this.requests.push(rec);
    if (host === AZURE_HOSTS.devops) rec.endpoint = 'oidc';
    else if (host === AZURE_HOSTS.login) rec.endpoint = /\/oauth2\/v2\.0\/token$/.test(url.pathname) ? 'entra' : 'metadata';
    else if (host === this.vaultHost) rec.endpoint = /\/sign$/.test(url.pathname) ? 'kv-sign' : 'kv-get';
    if (rec.endpoint.startsWith('kv-') && this.keyVaultLatencyMs > 0) await new Promise((r) => setTimeout(r, this.keyVaultLatencyMs));
    const fault = this.takeFault(rec.endpoint as AzureEndpoint, !!req.headers.authorization);
    if (fault) {
      res.on('finish', () => (rec.status = res.statusCode));
      await fault.answer(req, res, body);
      rec.status = res.statusCode;
      return;
    }
    rec.status = this.answer(rec, req, url, body, res);
  }

  private takeFault(endpoint: AzureEndpoint, authorized: boolean): AzureFault | undefined {
    const q = this.faults.get(endpoint);
    const head = q?.[0];
    if (!head || (head.authorized && !authorized)) return undefined;
    head.times = (head.times ?? 1) - 1;
    if (head.times <= 0) q.shift();
    return head;
  }

  private answer(rec: AzureRequest, req: http.IncomingMessage, url: URL, body: string, res: http.ServerResponse): number {
    switch (rec.endpoint) {
      case 'oidc':
        return this.oidc(req, url, res);
      case 'metadata':
        return this.metadata(url, res);
      case 'entra':
        return this.entra(url, body, res);
      case 'kv-get':
      case 'kv-sign':
        return this.keyVault(req, url, body, res);
      default:
        return json(res, 404, { error: 'unknown host or path' });
    }
  }

  // ------------------------------------------------------------------ Azure DevOps OIDC

  private oidc(req: http.IncomingMessage, url: URL, res: http.ServerResponse): number {
    const adoError = (status: number, message: string) =>
      json(res, status, {
        $id: '1',
        innerException: null,
        message,
        typeName: 'Microsoft.TeamFoundation.DistributedTask.WebApi.TaskOrchestrationPlanSecurityException',
        typeKey: 'TaskOrchestrationPlanSecurityException',
        errorCode: 0,
        eventId: 3000,
      });
    if (req.method !== 'POST' || !/\/oidctoken$/.test(url.pathname)) return json(res, 404, { message: 'not found' });
    if (req.headers.authorization !== `Bearer ${this.systemAccessToken}`) {
      res.setHeader('www-authenticate', 'Bearer');
      return adoError(401, 'TF400813: The user is not authorized to access this resource.');
    }
    if (url.searchParams.get('api-version') !== '7.1') return adoError(400, 'The requested REST API version is not supported.');
    if (url.searchParams.get('serviceConnectionId') !== this.serviceConnectionId) {
      return adoError(404, `Service connection ${url.searchParams.get('serviceConnectionId') ?? ''} not found or not authorized for this pipeline.`);
    }
    const now = Math.floor(Date.now() / 1000);
    const token = this.oidcJwts.issue({
      iss: `https://vstoken.dev.azure.com/${this.projectId}`,
      sub: `sc://${this.org}/cgg-project/azure-signing`,
      aud: FEDERATION_AUDIENCE,
      nbf: now - 60,
      iat: now,
      exp: now + this.oidcLifetimeSeconds,
    });
    this.issued.push(token);
    return json(res, 200, { oidcToken: token });
  }

  // ------------------------------------------------------------------ Entra ID

  private metadata(url: URL, res: http.ServerResponse): number {
    const base = `https://${AZURE_HOSTS.login}`;
    if (url.pathname === '/common/discovery/instance') {
      return json(res, 200, {
        tenant_discovery_endpoint: `${base}/${this.tenantId}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: AZURE_HOSTS.login, preferred_cache: AZURE_HOSTS.login, aliases: [AZURE_HOSTS.login] }],
      });
    }
    const m = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (!m) return json(res, 404, entraError('invalid_request', 90002, 'Tenant not found.'));
    const t = m[1];
    return json(res, 200, {
      token_endpoint: `${base}/${t}/oauth2/v2.0/token`,
      authorization_endpoint: `${base}/${t}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${base}/${t}/oauth2/v2.0/logout`,
      device_authorization_endpoint: `${base}/${t}/oauth2/v2.0/devicecode`,
      issuer: `${base}/${t}/v2.0`,
      jwks_uri: `${base}/${t}/discovery/v2.0/keys`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
    });
  }

  private entra(url: URL, body: string, res: http.ServerResponse): number {
    const tenant = url.pathname.split('/')[1];
    if (tenant !== this.tenantId) return json(res, 400, entraError('invalid_request', 90002, `Tenant '${tenant}' not found.`));
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'client_credentials')
      return json(res, 400, entraError('unsupported_grant_type', 70003, 'The app requested an unsupported grant type.'));
    if (form.get('client_id') !== this.clientId) {
      return json(
        res,
        400,
        entraError('unauthorized_client', 700016, `Application with identifier '${form.get('client_id') ?? ''}' was not found in the directory.`),
      );
    }
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      return json(
        res,
        401,
        entraError('invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
      );
    }
    const claims = this.oidcJwts.verify(form.get('client_assertion') ?? '');
    if (!claims || claims.aud !== FEDERATION_AUDIENCE) {
      return json(res, 400, entraError('invalid_client', 700211, 'No matching federated identity record found for presented assertion issuer.'));
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= now) {
      return json(
        res,
        400,
        entraError(
          'invalid_client',
          700024,
          `Client assertion is not within its valid time range. Current time: ${new Date().toISOString()}, assertion valid to: ${new Date(Number(claims.exp) * 1000).toISOString()}.`,
        ),
      );
    }
    const scope = form.get('scope') ?? '';
    if (scope !== `${VAULT_RESOURCE}/.default`)
      return json(res, 400, entraError('invalid_scope', 70011, `The provided value '${scope}' for the input parameter 'scope' is not valid.`));
    const lifetime = this.accessTokenLifetimeSeconds;
    const token = this.accessJwts.issue({
      aud: VAULT_RESOURCE,
      iss: `https://sts.windows.net/${this.tenantId}/`,
      appid: this.clientId,
      tid: this.tenantId,
      iat: now,
      nbf: now,
      exp: now + lifetime,
    });
    this.issued.push(token);
    return json(res, 200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token });
  }

  // ------------------------------------------------------------------ Key Vault

  private challenge(res: http.ServerResponse, message: string): number {
    const header = `Bearer authorization="https://${AZURE_HOSTS.login}/${this.tenantId}", resource="${VAULT_RESOURCE}"`;
    return json(res, 401, keyVaultError('Unauthorized', message), { 'www-authenticate': header });
  }

  private keyVault(req: http.IncomingMessage, url: URL, body: string, res: http.ServerResponse): number {
    const auth = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
    if (!auth) return this.challenge(res, 'AKV10000: Request is missing a Bearer or PoP token.');
    const claims = this.accessJwts.verify(auth[1]);
    if (!claims || claims.aud !== VAULT_RESOURCE) return this.challenge(res, 'AKV10032: Invalid issuer or audience.');
    if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return this.challenge(res, 'AKV10022: Invalid audience / token expired.');
    if (!url.searchParams.get('api-version'))
      return json(res, 400, keyVaultError('BadParameter', 'The request URI contains an invalid or missing api-version.'));
    const m = /^\/keys\/([A-Za-z0-9-]{1,127})(?:\/([0-9a-f]{32}))?(\/sign)?$/.exec(url.pathname);
    if (!m) return json(res, 404, keyVaultError('NotFound', 'The requested resource was not found.'));
    const [, name, version, sign] = m;
    const versions = this.keys.get(name) ?? [];
    const key = version ? versions.find((k) => k.version === version) : versions[versions.length - 1];
    if (!this.cryptoUser) {
      const action = sign ? 'Microsoft.KeyVault/vaults/keys/sign/action' : 'Microsoft.KeyVault/vaults/keys/read';
      return json(
        res,
        403,
        keyVaultError(
          'Forbidden',
          `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${String(claims.appid)};iss=${String(claims.iss)}\r\nAction: '${action}'\r\nResource: '/subscriptions/.../vaults/${this.vaultName}/keys/${name}'\r\nAssignment: (not found)\r\nDecisionReason: 'null'\r\nVault: ${this.vaultName};location=westeurope\r\n`,
          'ForbiddenByRbac',
        ),
      );
    }
    if (!key)
      return json(
        res,
        404,
        keyVaultError(
          'KeyNotFound',
          `A key with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`,
        ),
      );
    if (!sign) {
      if (req.method !== 'GET') return json(res, 405, keyVaultError('MethodNotAllowed', 'The method is not allowed.'));
      return json(res, 200, this.keyBundle(key));
    }
    if (req.method !== 'POST') return json(res, 405, keyVaultError('MethodNotAllowed', 'The method is not allowed.'));
    return this.signWith(key, body, res);
  }

  private keyBundle(k: VaultKey): unknown {
    const jwk = k.publicKey.export({ format: 'jwk' });
    const created = Math.floor(Date.now() / 1000) - 3600;
    return {
      key: { kid: this.keyUrl(k.name, k.version), kty: k.kty, key_ops: k.keyOps, ...jwk },
      attributes: { enabled: k.enabled, created, updated: created, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      tags: {},
    };
  }

  private signWith(k: VaultKey, body: string, res: http.ServerResponse): number {
    let req: { alg?: unknown; value?: unknown };
    try {
      req = JSON.parse(body) as { alg?: unknown; value?: unknown };
    } catch {
      return json(res, 400, keyVaultError('BadParameter', 'Request body is not valid JSON.'));
    }
    const algs: Record<string, { hash: string; bytes: number; kty: string }> = {
      ES256: { hash: 'sha256', bytes: 32, kty: 'EC' },
      ES384: { hash: 'sha384', bytes: 48, kty: 'EC' },
      RS256: { hash: 'sha256', bytes: 32, kty: 'RSA' },
      PS256: { hash: 'sha256', bytes: 32, kty: 'RSA' },
    };
    const alg = typeof req.alg === 'string' ? algs[req.alg] : undefined;
    const digest = typeof req.value === 'string' ? Buffer.from(req.value, 'base64url') : Buffer.alloc(0);
    if (!alg || alg.kty !== k.kty) return json(res, 400, keyVaultError('BadParameter', `Invalid algorithm '${String(req.alg)}' for key type ${k.kty}.`));
    if (digest.length !== alg.bytes) return json(res, 400, keyVaultError('BadParameter', 'Invalid digest length for the algorithm.'));
    // The digest is signed as it is (no hashing again): Key Vault signs digests.
    const sig =
      k.kty === 'EC'
        ? signPrehashed(k.privateKey, digest)
        : crypto.privateEncrypt(
            { key: k.privateKey, padding: crypto.constants.RSA_PKCS1_PADDING },
            Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), digest]),
          );
    return json(res, 200, { kid: this.keyUrl(k.name, k.version), value: b64url(sig) });
  }
}

/**
 * ECDSA P-256 over a SHA-256 digest that is already computed. Node's crypto has no prehashed
 * ECDSA API, so this is the textbook computation (s = k⁻¹(z + r·d) mod n) with a random k.
 */
export function signPrehashed(key: crypto.KeyObject, digest: Buffer): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const d = BigInt('0x' + Buffer.from(jwk.d!, 'base64url').toString('hex'));
  const curve = jwk.crv === 'P-384' ? P384 : P256;
  const z = BigInt('0x' + digest.toString('hex')) >> BigInt(Math.max(0, digest.length * 8 - curve.bits));
  for (;;) {
    const k = (BigInt('0x' + crypto.randomBytes(curve.bits / 8 + 8).toString('hex')) % (curve.n - 1n)) + 1n;
    const r = mulG(curve, k)[0] % curve.n;
    if (r === 0n) continue;
    const s = (modInv(k, curve.n) * (z + r * d)) % curve.n;
    if (s === 0n) continue;
    const width = curve.bits / 8;
    return Buffer.concat([toBytes(r, width), toBytes(s, width)]);
  }
}

interface Curve {
  p: bigint;
  a: bigint;
  n: bigint;
  g: [bigint, bigint];
  bits: number;
}

const P256: Curve = {
  p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
  n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  g: [0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n, 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n],
  bits: 256,
};
const P384: Curve = {
  p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
  a: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffcn,
  n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  g: [
    0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
  ],
  bits: 384,
};

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function modInv(a: bigint, m: bigint): bigint {
  let [old, r] = [mod(a, m), m];
  let [s, t] = [1n, 0n];
  while (r !== 0n) {
    const q = old / r;
    [old, r] = [r, old - q * r];
    [s, t] = [t, s - q * t];
  }
  return mod(s, m);
}

type Point = [bigint, bigint] | null;

function add(c: Curve, P: Point, Q: Point): Point {
  if (!P) return Q;
  if (!Q) return P;
  if (P[0] === Q[0] && mod(P[1] + Q[1], c.p) === 0n) return null;
  const l = P[0] === Q[0] && P[1] === Q[1] ? mod((3n * P[0] * P[0] + c.a) * modInv(2n * P[1], c.p), c.p) : mod((Q[1] - P[1]) * modInv(Q[0] - P[0], c.p), c.p);
  const x = mod(l * l - P[0] - Q[0], c.p);
  return [x, mod(l * (P[0] - x) - P[1], c.p)];
}

function mulG(c: Curve, k: bigint): [bigint, bigint] {
  let R: Point = null;
  let A: Point = c.g;
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) R = add(c, R, A);
    A = add(c, A, A);
  }
  return R!;
}

function toBytes(v: bigint, width: number): Buffer {
  return Buffer.from(v.toString(16).padStart(width * 2, '0'), 'hex');
}

export async function startAzureEmulator(options: AzureEmulatorOptions): Promise<AzureEmulator> {
  const emu = new AzureEmulator(options);
  await emu.start();
  return emu;
}

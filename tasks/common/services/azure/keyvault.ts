// Key Vault's keys get and sign, for a key that never leaves it. The first request carries no
// token: Key Vault answers 401 with `WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
// resource="<resource>"`, and the resource's host must be a suffix of the vault's host (as the Azure
// SDKs check), so a vault cannot send its caller's token to another audience. Then every call
// carries an access token of `<resource>/.default`. Answers are checked before they are believed:
// the key is EC P-256 (ES256), enabled, and allowed to sign; a signature is 64 bytes of r‖s and
// verifies with the key's public half over the very payload, before anything is attached.
import * as crypto from 'crypto';
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { HttpResponse, HttpStatusError, UnexpectedAnswerError, classifyHttpFailure, jsonBody, jsonErrorObject, retryAfterMs } from '../../platform/http';
import { quote } from '../../platform/output';
import { AttemptReport, FailureClass, RetryBudget, RetryError, withRetry } from '../../platform/retry';
import { KeyVaultKeyRef, describeKey } from './keyref';
import { AzureAnswerError, AzureTokenSource, RequestContext, azureRequest } from './tokens';

export const KEY_VAULT_API_VERSION = '7.5';
export const CRYPTO_USER_ROLE = 'Key Vault Crypto User';

export interface KeyVaultPublicKey {
  kid: string;
  version: string;
  /** SPKI PEM: what `cosign verify --key` reads. */
  pem: string;
  key: crypto.KeyObject;
}

export interface KeyVaultOptions {
  budget: RetryBudget;
  signal: AbortSignal;
  /** One line per failed attempt. */
  onFailure?: (what: string, report: AttemptReport) => void;
}

/** The token was refused (expired, revoked): the next attempt gets a new one. */
class TokenRefusedError extends HttpStatusError {}

function keyVaultMessage(res: HttpResponse): string {
  const err = jsonErrorObject(res)?.['error'];
  if (!err || typeof err !== 'object') return '';
  const e = err as Record<string, unknown>;
  const inner = e['innererror'] && typeof e['innererror'] === 'object' ? (e['innererror'] as Record<string, unknown>)['code'] : undefined;
  const code = [e['code'], inner].filter((c) => typeof c === 'string').join('/');
  const message = String(e['message'] ?? '').split(/\r?\n/)[0];
  return `${code ? ` ${quote(code, 60)}` : ''}${message ? `: ${quote(message, 240)}` : ''}`;
}

/** The challenge's parameters (`key="value"` pairs after Bearer). */
export function parseChallenge(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!/^\s*Bearer\s/i.test(header)) return out;
  for (const m of header.matchAll(/([A-Za-z_]+)="([^"]*)"/g)) out[m[1].toLowerCase()] = m[2];
  return out;
}

/** Key Vault's raw r‖s as the DER SEQUENCE of two INTEGERs that cosign reads. */
export function rawToDer(raw: Buffer): Buffer {
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    const body = v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const half = raw.length / 2;
  const seq = Buffer.concat([int(raw.subarray(0, half)), int(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, seq.length]), seq]);
}

function checkedKey(body: unknown, ref: KeyVaultKeyRef): KeyVaultPublicKey {
  const bundle = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const key = bundle['key'] && typeof bundle['key'] === 'object' ? (bundle['key'] as Record<string, unknown>) : undefined;
  const attributes = bundle['attributes'] && typeof bundle['attributes'] === 'object' ? (bundle['attributes'] as Record<string, unknown>) : {};
  if (!key || typeof key['kid'] !== 'string') throw new UnexpectedAnswerError('Key Vault answered a key without kid');
  const kid = key['kid'];
  const m = /\/keys\/([A-Za-z0-9-]{1,127})\/([0-9a-f]{32})$/i.exec(kid);
  if (!m || m[1].toLowerCase() !== ref.name.toLowerCase() || (ref.version && m[2].toLowerCase() !== ref.version)) {
    throw new UnexpectedAnswerError(`Key Vault answered for another key (${quote(kid, 200)})`);
  }
  const kty = String(key['kty'] ?? '');
  const crv = String(key['crv'] ?? '');
  if (!/^EC(-HSM)?$/.test(kty) || crv !== 'P-256') {
    throw new UserError(
      `Key Vault key ${describeKey(ref, m[2])} is ${quote(kty, 20)}${crv ? ` ${quote(crv, 20)}` : ''}: Cosign@1 signs with EC P-256 keys (ES256); create the key with --kty EC --curve P-256.`,
    );
  }
  if (attributes['enabled'] === false) throw new UserError(`Key Vault key ${describeKey(ref, m[2])} is disabled.`);
  const ops = key['key_ops'];
  if (Array.isArray(ops) && !ops.includes('sign'))
    throw new UserError(`Key Vault key ${describeKey(ref, m[2])} does not permit 'sign' (key_ops ${quote(ops.join(','), 60)}).`);
  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: String(key['x'] ?? ''), y: String(key['y'] ?? '') }, format: 'jwk' });
  } catch {
    throw new UnexpectedAnswerError('Key Vault answered a key whose x and y are not a P-256 point');
  }
  return { kid, version: m[2].toLowerCase(), pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), key: publicKey };
}

export class KeyVaultClient {
  private scope?: Promise<string>;
  private token?: Promise<string>;
  private renew = false;
  private publicKeyValue?: KeyVaultPublicKey;
  /** Calls answered 200 (for the summary and the bench). */
  calls = 0;

  constructor(
    readonly ref: KeyVaultKeyRef,
    readonly tokens: AzureTokenSource,
    private readonly options: KeyVaultOptions,
  ) {}

  private get service(): string {
    return `Key Vault ${this.ref.vaultName} (${this.ref.vaultHost})`;
  }

  private url(path: string): string {
    return `${this.ref.vaultUrl}/keys/${this.ref.name}${path}?api-version=${KEY_VAULT_API_VERSION}`;
  }

  /** The scope Key Vault's 401 challenge names, learnt once with a request that carries no token. */
  private challengeScope(ctx: RequestContext): Promise<string> {
    this.scope ??= (async () => {
      const res = await azureRequest(this.service, { method: 'GET', url: this.url(this.ref.version ? `/${this.ref.version}` : ''), kind: 'azure', ...ctx });
      const challenge = parseChallenge(res.headers['www-authenticate'] ?? '');
      if (res.status !== 401 || !challenge['resource']) {
        throw new UnexpectedAnswerError(
          `${this.ref.vaultHost} answered ${res.status} without a Bearer challenge to a request without a token: it is not Key Vault`,
        );
      }
      let resource: URL;
      try {
        resource = new URL(challenge['resource']);
      } catch {
        throw new UnexpectedAnswerError(`${this.ref.vaultHost}'s challenge names a resource that is not a URL`);
      }
      if (resource.protocol !== 'https:' || !`.${this.ref.vaultHost}`.endsWith(`.${resource.hostname}`)) {
        throw new UserError(
          `${this.ref.vaultHost} asked for a token of ${quote(resource.origin, 80)}, whose host is not a suffix of the vault's: refused (a token goes only to its own audience).`,
        );
      }
      return `${resource.origin}/.default`;
    })();
    this.scope.catch(() => (this.scope = undefined));
    return this.scope;
  }

  /**
   * The access token every call shares: asked for once (concurrent calls wait for the same one),
   * again when Key Vault refused it, and again when less than REFRESH_MARGIN_MS is left of it.
   */
  private currentToken(ctx: RequestContext): Promise<string> {
    if (this.renew || this.tokens.fresh() === false) {
      this.renew = false;
      this.token = undefined;
    }
    this.token ??= this.challengeScope(ctx).then((scope) => this.tokens.accessToken(scope, ctx, { renew: true }));
    this.token.catch(() => (this.token = undefined));
    return this.token;
  }

  private failure(res: HttpResponse, what: string): Error {
    const said = keyVaultMessage(res);
    const where = `Key Vault ${this.ref.vaultName} answered ${res.status} to ${what}${said}`;
    if (res.status === 401) {
      this.renew = true;
      return new TokenRefusedError(`${where} (the token was refused; a new one is asked for)`, 401);
    }
    if (res.status === 403) {
      return new AzureAnswerError(
        `${where}: the service connection's principal needs the role '${CRYPTO_USER_ROLE}' on the vault or the key`,
        403,
        `assign '${CRYPTO_USER_ROLE}'`,
      );
    }
    if (res.status === 404) return new AzureAnswerError(`${where}: check 'keyVaultKey' (vault, name and version)`, 404);
    return new AzureAnswerError(where, res.status, undefined, retryAfterMs(res.headers));
  }

  /** One Key Vault call, retried within the budget: 429 and 5xx transient (Retry-After honoured), a refused token renewed, 403 permanent. */
  private async call(method: 'GET' | 'POST', path: string, body: unknown, what: string): Promise<unknown> {
    const { value } = await withRetry(
      async (_n, attemptSignal) => {
        const ctx = { signal: attemptSignal, timeoutMs: Math.min(30_000, this.options.budget.attemptTimeoutSeconds * 1000) };
        const token = await this.currentToken(ctx);
        const res = await azureRequest(this.service, {
          method,
          url: this.url(path),
          headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
          kind: 'azure',
          ...ctx,
        });
        if (res.status !== 200) throw this.failure(res, what);
        this.calls++;
        return jsonBody(res, `Key Vault ${this.ref.vaultName}`);
      },
      {
        budget: this.options.budget,
        signal: this.options.signal,
        classify: classifyKeyVaultFailure,
        onFailure: (r) => this.options.onFailure?.(what, r),
        giveUp: (failed: RetryError) =>
          new UserError(`Key Vault ${what} (key ${describeKey(this.ref)}) failed after ${failed.attempts} attempt(s): ${errorMessage(failed.lastError)}`),
      },
    );
    return value;
  }

  /** The key's public half (its version: the one named, else the current one), checked. */
  async publicKey(): Promise<KeyVaultPublicKey> {
    if (this.publicKeyValue) return this.publicKeyValue;
    const body = await this.call('GET', this.ref.version ? `/${this.ref.version}` : '', undefined, 'get key');
    this.publicKeyValue = checkedKey(body, this.ref);
    return this.publicKeyValue;
  }

  /** An ES256 signature of `payload` (Key Vault signs its SHA-256), DER-encoded, verified with the public key first. */
  async sign(payload: Buffer): Promise<Buffer> {
    const pub = await this.publicKey();
    const digest = crypto.createHash('sha256').update(payload).digest();
    const body = await this.call('POST', `/${pub.version}/sign`, { alg: 'ES256', value: digest.toString('base64url') }, 'sign');
    const value = body && typeof body === 'object' ? (body as Record<string, unknown>)['value'] : undefined;
    const raw = typeof value === 'string' && /^[A-Za-z0-9_-]{1,200}$/.test(value) ? Buffer.from(value, 'base64url') : Buffer.alloc(0);
    if (raw.length !== 64)
      throw new UserError(`Key Vault ${this.ref.vaultName} answered sign with a value that is not a 64-byte ES256 signature: nothing was attached.`);
    if (!crypto.verify('sha256', payload, { key: pub.key, dsaEncoding: 'ieee-p1363' }, raw)) {
      throw new UserError(
        `Key Vault ${this.ref.vaultName} answered sign with a signature that does not verify with ${describeKey(this.ref, pub.version)}: nothing was attached.`,
      );
    }
    return rawToDer(raw);
  }
}

/** Key Vault, Entra ID and the OIDC endpoint: a refused token and 429/5xx are transient; 403 and other refusals permanent. */
export function classifyKeyVaultFailure(err: unknown): FailureClass {
  if (err instanceof CancelledError) return { kind: 'permanent', reason: 'cancelled' };
  if (err instanceof TokenRefusedError) return { kind: 'transient', reason: 'kv-401' };
  const base = classifyHttpFailure(err);
  if (err instanceof AzureAnswerError && err.status === 403) return { ...base, reason: 'kv-403', hint: `assign '${CRYPTO_USER_ROLE}'` };
  if (err instanceof AzureAnswerError && err.hint && base.kind === 'permanent') return { ...base, hint: err.hint };
  return base;
}

// The registry's Docker V2 token endpoint (/v2/registry/auth on the API listener): Basic credentials
// (a DigitalOcean API token, or docker credentials the API issued) buy a short-lived JWT for the
// requested scopes. It refuses push scopes while a GC is active on the registry, and for tailSeconds
// after one ended: the incident this project exists for. The registry front (front.ts) accepts the
// JWTs issued here.
import * as crypto from 'crypto';
import * as http from 'http';
import { URL } from 'url';
import type { Registries } from './gc';
import { gcStateAt } from './gc';
import { basic, isoMillis, send } from './http';
import type { RequestRecord } from './types';

const ISSUED_TOKEN_TTL_SECONDS = 300;

export interface ParsedScope {
  raw: string;
  type: string;
  name: string;
  actions: string[];
}

export interface IssuedToken {
  scopes: ParsedScope[];
  expiresAt: number;
}

interface DockerCred {
  readWrite: boolean;
  expiresAt?: number;
}

export type TokenRequest = { at: number; scopes: string[]; granted: boolean; reason?: string };

function parseScope(raw: string): ParsedScope | undefined {
  const first = raw.indexOf(':');
  const last = raw.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  return {
    raw,
    type: raw.slice(0, first),
    name: raw.slice(first + 1, last),
    actions: raw
      .slice(last + 1)
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean),
  };
}

export class TokenEndpoint {
  readonly tokenRequests: TokenRequest[] = [];
  private readonly issued = new Map<string, IssuedToken>();
  private readonly creds = new Map<string, DockerCred>();

  constructor(
    /** The accepted DigitalOcean API tokens and their scopes. */
    private readonly apiTokens: Map<string, Set<string>>,
    private readonly registries: Registries,
    private readonly tailMs: number,
  ) {}

  /** Issues docker credentials as GET .../docker-credentials does. */
  dockerCredentials(opts: { readWrite?: boolean; expirySeconds?: number } = {}): { username: string; password: string; auth: string } {
    const secret = crypto.randomBytes(32).toString('hex');
    const expiry = opts.expirySeconds ?? 0;
    this.creds.set(secret, { readWrite: !!opts.readWrite, expiresAt: expiry > 0 ? Date.now() + expiry * 1000 : undefined });
    return { username: secret, password: secret, auth: Buffer.from(`${secret}:${secret}`).toString('base64') };
  }

  /** A JWT this endpoint issued (expired or not), by its value. */
  issuedToken(token: string): IssuedToken | undefined {
    return this.issued.get(token);
  }

  /** Whether push tokens are refused for a registry right now, and why. */
  private pushBlocked(registry: string, now: number): string | undefined {
    for (const gc of this.registries.list(registry)) {
      const s = gcStateAt(gc, now);
      if (s.terminalAt === undefined) return `garbage collection active (${s.status})`;
      if (this.tailMs > 0 && now - s.terminalAt < this.tailMs) return 'garbage collection finished less than tailSeconds ago';
    }
    return undefined;
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord, url: URL): void {
    const now = Date.now();
    const scopesRaw = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    const unauthorized = (reason: string): void => {
      this.tokenRequests.push({ at: now, scopes: scopesRaw, granted: false, reason });
      send(res, rec, 401, '{"id": "Unauthorized", "message": "Unable to authenticate you" }', { 'x-request-id': crypto.randomUUID() });
    };
    if ((req.method ?? 'GET').toUpperCase() !== 'GET') return unauthorized(`method ${req.method} not supported`);
    const b = basic(req);
    if (!b) return unauthorized('missing basic credentials');
    // who is it?
    let readWrite: boolean;
    const apiScopes = this.apiTokens.get(b.pass) ?? (b.pass === '' ? this.apiTokens.get(b.user) : undefined);
    if (apiScopes) {
      rec.token = this.apiTokens.has(b.pass) ? b.pass : b.user;
      const any = [...apiScopes].some((s) => s === '*' || s.startsWith('registry:'));
      if (!any) return unauthorized('API token has no registry scope');
      readWrite = apiScopes.has('registry:update') || apiScopes.has('*') || apiScopes.has('registry:*');
    } else {
      const cred = this.creds.get(b.pass);
      if (!cred || b.user !== b.pass) return unauthorized('bad credentials');
      rec.token = b.user;
      if (cred.expiresAt !== undefined && now >= cred.expiresAt) return unauthorized('credentials expired');
      readWrite = cred.readWrite;
    }
    const parsed: ParsedScope[] = [];
    for (const raw of scopesRaw) {
      const p = parseScope(raw);
      if (p) parsed.push(p);
    }
    for (const p of parsed) {
      const wantsWrite = p.actions.includes('push') || p.actions.includes('*');
      if (!wantsWrite) continue;
      if (!readWrite) return unauthorized('read-only credentials cannot get a push scope');
      let registry = p.name.split('/')[0];
      if (!this.registries.has(registry)) registry = this.registries.names[0];
      const blocked = this.pushBlocked(registry, now);
      if (blocked) return unauthorized(`${blocked} on ${registry}: write-scoped JWTs are not issued`);
    }
    const t = crypto.randomBytes(24).toString('base64url');
    this.issued.set(t, { scopes: parsed, expiresAt: now + ISSUED_TOKEN_TTL_SECONDS * 1000 });
    this.tokenRequests.push({ at: now, scopes: scopesRaw, granted: true });
    send(res, rec, 200, JSON.stringify({ token: t, access_token: t, expires_in: ISSUED_TOKEN_TTL_SECONDS, issued_at: isoMillis(now) }), {
      'x-request-id': crypto.randomUUID(),
    });
  }
}

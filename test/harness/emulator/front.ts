// The registry front: a second listener before a REAL distribution registry (the upstream), doing
// what registry.digitalocean.com does in front of its storage: a Bearer challenge pointing at the
// token endpoint (token.ts), the JWT's scopes checked per repository and action, then the request
// proxied to the upstream with hop-by-hop and auth headers removed and upstream Locations rewritten
// to the front.
import * as http from 'http';
import { URL } from 'url';
import type { FaultInjector } from './faults';
import { bearer, send } from './http';
import type { IssuedToken, TokenEndpoint } from './token';
import { RequestRecord, TOKEN_SERVICE } from './types';

export class RegistryFront {
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(
    private readonly upstream: URL,
    private readonly tokens: TokenEndpoint,
    private readonly faults: FaultInjector,
    /** Known once the listeners listen. */
    private readonly urls: { apiUrl(): string; registryHost(): string },
  ) {}

  /** Closes the upstream connections. */
  stop(): void {
    this.agent.destroy();
  }

  private frontRepoAndAction(method: string, pathname: string): { ping: boolean; scope?: string; repo?: string; write: boolean } {
    const write = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method);
    if (pathname === '/v2/' || pathname === '/v2') return { ping: true, write: false };
    if (pathname === '/v2/_catalog') return { ping: false, scope: 'registry:catalog:*', write: false };
    const m = /^\/v2\/(.+?)\/(manifests|blobs|tags|referrers)(\/.*)?$/.exec(pathname);
    if (!m) return { ping: false, write };
    return { ping: false, repo: m[1], write };
  }

  private tokenAllows(t: IssuedToken, repo: string, write: boolean): boolean {
    return t.scopes.some(
      (s) =>
        s.type === 'repository' &&
        (s.name === repo || s.name === '*') &&
        (s.actions.includes('*') || (write ? s.actions.includes('push') : s.actions.includes('pull') || s.actions.includes('push'))),
    );
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord, url: URL): Promise<void> {
    const now = rec.at;
    const method = rec.method;
    const distHeaders = { 'docker-distribution-api-version': 'registry/2.0' };
    if (await this.faults.apply('front', rec, res, distHeaders)) return;

    const need = this.frontRepoAndAction(method, url.pathname);
    const scope = need.scope ?? (need.repo ? `repository:${need.repo}:${need.write ? 'pull,push' : 'pull'}` : undefined);
    const challenge = (error?: string): void => {
      let h = `Bearer realm="${this.urls.apiUrl()}/v2/registry/auth",service="${TOKEN_SERVICE}"`;
      if (scope) h += `,scope="${scope}"`;
      if (error) h += `,error="${error}"`;
      const detail = scope
        ? need.repo
          ? [{ Type: 'repository', Class: '', Name: need.repo, Action: need.write ? 'push' : 'pull' }]
          : [{ Type: 'registry', Class: '', Name: 'catalog', Action: '*' }]
        : null;
      const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail }] });
      send(res, rec, 401, body, { ...distHeaders, 'www-authenticate': h });
      req.resume();
    };
    const bt = bearer(req);
    const tok = bt ? this.tokens.issuedToken(bt) : undefined;
    if (!tok || tok.expiresAt <= now) return challenge(bt ? 'invalid_token' : undefined);
    if (need.repo && !this.tokenAllows(tok, need.repo, need.write)) return challenge('insufficient_scope');
    if (need.scope && !tok.scopes.some((s) => s.raw === need.scope || (s.type === 'registry' && s.name === 'catalog'))) return challenge('insufficient_scope');
    this.proxy(req, res, rec);
  }

  private proxy(req: http.IncomingMessage, res: http.ServerResponse, rec: RequestRecord): void {
    const up = this.upstream;
    const hop = new Set([
      'connection',
      'keep-alive',
      'proxy-connection',
      'transfer-encoding',
      'upgrade',
      'te',
      'trailer',
      'proxy-authorization',
      'authorization',
      'host',
    ]);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!hop.has(k) && v !== undefined) headers[k] = v;
    headers.host = up.host;
    const preq = http.request(
      {
        protocol: up.protocol,
        hostname: up.hostname,
        port: up.port || 80,
        method: req.method,
        path: req.url,
        headers,
        agent: this.agent,
      },
      (pres) => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(pres.headers)) {
          if (v === undefined || hop.has(k)) continue;
          if (k === 'location' && typeof v === 'string') out[k] = this.rewriteLocation(v);
          else out[k] = v;
        }
        rec.status = pres.statusCode ?? 502;
        if (res.destroyed) {
          pres.resume();
          return;
        }
        res.writeHead(pres.statusCode ?? 502, pres.statusMessage, out);
        pres.pipe(res);
        pres.on('error', () => res.destroy());
      },
    );
    preq.on('error', (e) => {
      if (!res.headersSent) {
        send(res, rec, 502, JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `emulator front: upstream error: ${e.message}` }] }), {
          'docker-distribution-api-version': 'registry/2.0',
        });
      } else res.destroy();
    });
    req.on('aborted', () => preq.destroy());
    res.on('close', () => {
      if (!res.writableFinished) preq.destroy();
    });
    req.pipe(preq);
  }

  private rewriteLocation(loc: string): string {
    const up = this.upstream;
    try {
      const u = new URL(loc);
      const upPort = up.port || (up.protocol === 'https:' ? '443' : '80');
      const lPort = u.port || (u.protocol === 'https:' ? '443' : '80');
      if (u.hostname === up.hostname && lPort === upPort) {
        return `http://${this.urls.registryHost()}${u.pathname}${u.search}${u.hash}`;
      }
    } catch {
      /* relative: leave as is */
    }
    return loc;
  }
}

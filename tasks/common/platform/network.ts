// The agent's network settings (Agent.ProxyUrl, Agent.ProxyUsername, Agent.ProxyPassword,
// Agent.ProxyBypassList, Agent.CAInfo), read once here for both sides of a task: http.ts (the Node
// side) and the environment of every cosign child (the Go side, which reads no agent variable).
//
// What a child gets, and why (Go's documented behaviour, which cosign inherits through
// go-containerregistry's default transport, net/http.ProxyFromEnvironment):
//  - HTTPS_PROXY and HTTP_PROXY: the agent's proxy URL, with Agent.ProxyUsername/Agent.ProxyPassword
//    URL-encoded into its user info when the agent gives them (else the URL's own user info is kept).
//    Go sends the user info as `Proxy-Authorization: Basic` on CONNECT and on proxied http requests.
//    golang.org/x/net/http/httpproxy FromEnvironment reads the upper-case name first, then the
//    lower-case one (getEnvAny("HTTPS_PROXY", "https_proxy")); curl and others read only the
//    lower-case one. So when the agent has a proxy, the lower-case https_proxy/http_proxy/no_proxy
//    the agent's own environment may hold are removed: one answer for every program cosign may run.
//    When the agent has no proxy, nothing is added or removed (a machine-wide HTTPS_PROXY still
//    reaches cosign as before).
//  - NO_PROXY: Agent.ProxyBypassList converted (see noProxyEntry). httpproxy's Config.NoProxy doc:
//    comma-separated; "foo.com" matches foo.com and its subdomains, ".y.com" matches x.y.com and not
//    y.com, an IP address or CIDR, optionally with a port. Go never proxies localhost or a loopback
//    address whatever NO_PROXY says (httpproxy useProxy; net/http ProxyFromEnvironment doc).
//  - SSL_CERT_FILE: Agent.CAInfo. crypto/x509 on Linux and the other Unixes but macOS reads
//    SSL_CERT_FILE INSTEAD of its default bundle files (root_unix.go loadSystemRoots: `files =
//    []string{f}`), then still the default certificate directories (root_linux.go certDirectories)
//    unless SSL_CERT_DIR is set. So the child gets a private bundle: the bundle Go would have read
//    (SSL_CERT_FILE of the agent's environment, else the first of root_linux.go's certFiles that
//    reads, else Node's own tls.rootCertificates) plus the agent's CA file, 0600 in a 0700 folder
//    under the agent's temp directory, removed on exit. On Windows and macOS Go verifies with the
//    system's store and ignores SSL_CERT_FILE: nothing is set there (the CA must be in that store).
//  - Not mapped: Agent.ClientCert (Go has no variable for a client certificate),
//    Agent.SkipCertValidation (cosign's allowInsecureRegistry input is the explicit switch).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tls from 'tls';
import { pipelineVariable } from './agent';
import { addCredentialPair, addSecret, debug, warn } from './output';
import { onExit } from './task';

export interface ProxySettings {
  /** Agent.ProxyUrl as given (trimmed). */
  raw: string;
  url: URL;
  username: string;
  password: string;
  /** Agent.ProxyUsername or Agent.ProxyPassword was given apart from the URL. */
  separateCredentials: boolean;
  /** The bypass patterns that compiled, as given. */
  bypassPatterns: string[];
  bypass: RegExp[];
}

export interface ProxyVariables {
  proxyUrl?: string;
  username?: string;
  password?: string;
  /** A JSON array of regular expressions, each tested against a request's whole URL. */
  bypassList?: string;
}

/** The bypass list's patterns (a JSON array of strings); an unreadable list is empty, a pattern that does not compile is skipped. */
export function bypassPatterns(json: string | undefined, onSkip: (why: string) => void = () => undefined): { patterns: string[]; regexes: RegExp[] } {
  const patterns: string[] = [];
  const regexes: RegExp[] = [];
  let list: unknown;
  try {
    list = JSON.parse(json || '[]');
  } catch {
    onSkip('Agent.ProxyBypassList is not a JSON array: no host bypasses the proxy');
    return { patterns, regexes };
  }
  for (const p of Array.isArray(list) ? (list as unknown[]) : []) {
    if (typeof p !== 'string' || p.trim() === '') continue;
    try {
      regexes.push(new RegExp(p, 'i'));
      patterns.push(p);
    } catch {
      onSkip(`proxy bypass pattern ${JSON.stringify(p)} is not a regular expression: skipped`);
    }
  }
  return { patterns, regexes };
}

let warnedMalformed = false;

/** One warning per task run for an Agent.ProxyUrl that is not a URL (http.ts and the child environment both read it). */
function onMalformed(line: string): void {
  if (warnedMalformed) return;
  warnedMalformed = true;
  warn(line);
}

/** The agent's proxy from explicit variables (undefined without a readable Agent.ProxyUrl, with one warning when it is set but not a URL). */
export function parseProxy(v: ProxyVariables, onSkip?: (why: string) => void): ProxySettings | undefined {
  const raw = (v.proxyUrl ?? '').trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not quoted: a proxy URL may carry a password, which only a parsed URL lets us register.
    onMalformed("Agent.ProxyUrl is set but is not a URL: the tasks and cosign connect without a proxy. Fix the agent's proxy setting (config.sh --proxyurl).");
    return undefined;
  }
  const { patterns, regexes } = bypassPatterns(v.bypassList, onSkip);
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const username = v.username || decode(url.username);
  const password = v.password || decode(url.password);
  // The Proxy-Authorization header carries base64(user:password): a secret like the password itself.
  if (password) addCredentialPair(username, password);
  return {
    raw,
    url,
    username,
    password,
    separateCredentials: Boolean(v.username || v.password),
    bypassPatterns: patterns,
    bypass: regexes,
  };
}

/** The agent's proxy, from agent.ts's copy of its variables. */
export function readProxy(onSkip?: (why: string) => void): ProxySettings | undefined {
  return parseProxy(
    {
      proxyUrl: pipelineVariable('Agent.ProxyUrl'),
      username: pipelineVariable('Agent.ProxyUsername'),
      password: pipelineVariable('Agent.ProxyPassword'),
      bypassList: pipelineVariable('Agent.ProxyBypassList'),
    },
    onSkip,
  );
}

/** The proxy URL a Go program reads from HTTPS_PROXY: the agent's credentials URL-encoded into its user info. */
export function proxyUrlForChild(p: ProxySettings): string {
  if (!p.separateCredentials) return p.raw;
  const u = new URL(p.url.href);
  // URL's setters percent-encode only what userinfo forbids; encodeURIComponent leaves nothing but
  // unreserved characters and !*'() (sub-delims, allowed in userinfo by RFC 3986 3.2.1) unencoded.
  u.username = encodeURIComponent(p.username);
  u.password = p.password ? encodeURIComponent(p.password) : '';
  return u.href;
}

const LABEL = '[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?';
const HOST_PORT = new RegExp(`^${LABEL}(?:\\.${LABEL})*(?::\\d{1,5})?$`, 'i');

/**
 * One bypass regex as a Go NO_PROXY entry, or undefined when it has no such form. Accepted: an
 * optional `^`; an optional scheme (`https?://`, `(https?://)?`, `.*://`, `http://`, `https://`:
 * NO_PROXY has no scheme, so it is dropped); an optional wildcard before the host (`.*\.` gives
 * `.host`, subdomains only; `(.*\.)?` and `.*` give `host`, the host and its subdomains); a host
 * name or IPv4 address with its dots escaped (or bare: a bare dot is read as meant literally), and
 * an optional `:port`; an optional end (`$`, `/`, `/.*`, `(/.*)?`, `.*`, `(:\d+)?`). Anything else
 * (alternatives, classes, quantifiers, `\d`, globs) has no NO_PROXY form and is skipped: requests
 * it matches go through the proxy from cosign while Node's requests bypass it. `.*` alone is `*`.
 */
export function noProxyEntry(pattern: string): string | undefined {
  let p = pattern.trim().replace(/\\\//g, '/');
  if (/^\^?\.[*+]\$?$/.test(p)) return '*';
  p = p.replace(/^\^/, '');
  p = p.replace(/^(?:\(\?:https\?:\/\/\)\?|\(https\?:\/\/\)\?|https\?:\/\/|https?:\/\/|\.\*:\/\/)/, '');
  let prefix = '';
  const wildcard = /^(?:\.\*\\\.|\(\?:\.\*\\\.\)\?|\(\.\*\\\.\)\?|\.\*)/.exec(p);
  if (wildcard) {
    prefix = wildcard[0] === '.*\\.' ? '.' : '';
    p = p.slice(wildcard[0].length);
  }
  p = p.replace(/(?:\/\.\*|\(\/\.\*\)\?|\(\?:\/\.\*\)\?|\/|\.\*|\(:\\d\+\)\?|\(\?::\\d\+\)\?)?\$?$/, '');
  const host = p.replace(/\\\./g, '.');
  if (!HOST_PORT.test(host)) return undefined;
  return prefix + host.toLowerCase();
}

/** NO_PROXY from the bypass patterns: the entries that convert, comma-separated; each skipped one named to `onSkip`. */
export function noProxyList(patterns: string[], onSkip: (why: string) => void = () => undefined): string {
  const entries: string[] = [];
  for (const p of patterns) {
    const e = noProxyEntry(p);
    if (e === undefined) onSkip(`proxy bypass pattern ${JSON.stringify(p)} has no NO_PROXY form: cosign's requests it matches go through the proxy`);
    else if (!entries.includes(e)) entries.push(e);
  }
  return entries.join(',');
}

/** The default bundle files crypto/x509 reads on Linux, in its order (root_linux.go certFiles). */
export const GO_CERT_FILES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** The roots Go would have read without SSL_CERT_FILE set by us: the parent's SSL_CERT_FILE, else the first default file that reads, else Node's roots. */
export function systemRootsPem(parentCertFile: string | undefined, files: string[] = GO_CERT_FILES): string {
  for (const f of parentCertFile ? [parentCertFile] : files) {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      /* next */
    }
  }
  return tls.rootCertificates.join('\n');
}

/** The system roots, then the agent's CA, each ending with a newline. */
export function caBundle(systemRoots: string, agentCa: string): string {
  const part = (s: string) => (s.endsWith('\n') ? s : s + '\n');
  return part(systemRoots) + part(agentCa);
}

/** Writes the bundle 0600 in a fresh 0700 folder under `root`; removed on exit. Returns the file. */
function writeBundle(root: string, content: string): string {
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'cosign-ca-'));
  onExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, 'ca-bundle.pem');
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** What a child's environment gets from the agent's settings: variables to set, and names to remove. */
export interface ChildNetwork {
  set: Record<string, string>;
  unset: string[];
}

export interface ChildNetworkInput {
  proxy?: ProxySettings;
  /** Agent.CAInfo's content, when it names a readable file. */
  agentCa?: string;
  /** The roots to put before the agent's CA. */
  systemRoots?: () => string;
  /** Writes the bundle, returns its path. */
  write?: (content: string) => string;
  onSkip?: (why: string) => void;
}

/** The child's network variables from the agent's settings (pure but for `write`). */
export function childNetworkFrom(input: ChildNetworkInput): ChildNetwork {
  const out: ChildNetwork = { set: {}, unset: [] };
  const p = input.proxy;
  if (p && /^https?:$/.test(p.url.protocol)) {
    const url = proxyUrlForChild(p);
    if (p.password) addSecret(p.separateCredentials ? encodeURIComponent(p.password) : p.url.password);
    out.set.HTTPS_PROXY = url;
    out.set.HTTP_PROXY = url;
    out.set.NO_PROXY = noProxyList(p.bypassPatterns, input.onSkip);
    out.unset.push('https_proxy', 'http_proxy', 'no_proxy');
  } else if (p) {
    input.onSkip?.(`Agent.ProxyUrl has the scheme ${JSON.stringify(p.url.protocol)}, not http or https: cosign gets no proxy`);
  }
  if (input.agentCa !== undefined && input.write) {
    out.set.SSL_CERT_FILE = input.write(caBundle((input.systemRoots ?? (() => tls.rootCertificates.join('\n')))(), input.agentCa));
  }
  return out;
}

const unreadableWarned = new Set<string>();

/**
 * The file an agent setting names (Agent.CAInfo, Agent.ClientCert, Agent.ClientCertKey), for both
 * sides of a task. A setting that names a file the task cannot read is not silently ignored: one
 * warning per setting says which file, why, and what the task does without it.
 */
export function readAgentFile(name: string, without: string): Buffer | undefined {
  const file = (pipelineVariable(name) ?? '').trim();
  if (!file) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if (!unreadableWarned.has(name)) {
      unreadableWarned.add(name);
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      warn(`${name} names ${JSON.stringify(file)}, which cannot be read (${code}): ${without}.`);
    }
    return undefined;
  }
}

let cached: ChildNetwork | undefined;

/** The agent's network settings for a child (computed once per task run; the CA bundle written then). */
export function agentChildNetwork(): ChildNetwork {
  if (cached) return cached;
  const agentCa =
    process.platform !== 'win32' && process.platform !== 'darwin'
      ? readAgentFile('Agent.CAInfo', "the task and cosign trust the system's roots only")?.toString('utf8')
      : undefined;
  const tempRoot = pipelineVariable('Agent.TempDirectory') || os.tmpdir();
  cached = childNetworkFrom({
    proxy: readProxy(debug),
    agentCa,
    systemRoots: () => systemRootsPem(process.env['SSL_CERT_FILE']),
    write: (content) => writeBundle(tempRoot, content),
    onSkip: debug,
  });
  return cached;
}

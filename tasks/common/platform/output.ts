// The one output layer: every line a task prints goes through this module.
//
// The agent executes `##vso[` wherever it appears in a line of stdout or stderr (its parser looks the
// prefix up anywhere in the line), and honours `##[` formatting prefixes at the start of a line. So:
//  - text from outside (servers, files, cosign, inputs) never carries `##vso[` or `##[` into what we
//    print: both are neutralised wherever they appear;
//  - line breaks in text (CR, LF, VT, FF, NEL, U+2028, U+2029) never start a line of their own: they
//    are printed as visible escapes, as are other control characters;
//  - every secret the task holds is replaced by *** in every line, the result message included.
//    `##vso[task.setsecret]` is the one line where a secret is written, for the agent to mask it.
//
// This module must not import task-lib: task-lib's own load reads Agent.ProxyPassword through
// getVariable, which prints `Agent.ProxyPassword=<value>` in a debug line. The stream guard
// (installOutputGuard, which runTask calls before it loads the task's code) redacts what task-lib,
// tool-lib or Node print themselves.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { agentEnvironment, endpointAuthParameters, isSecretParameter } from './agent';

const MASK = '***';
/** Values shorter than this are not redacted: masking every "a" would garble the log, not protect it. */
const MIN_SECRET_LENGTH = 3;

const secrets = new Set<string>();
let ordered: string[] = [];

function remember(value: string): void {
  if (value.length < MIN_SECRET_LENGTH || secrets.has(value)) return;
  secrets.add(value);
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/**
 * A secret and the forms it takes on the wire: URL-encoded (query strings, proxy URLs' user info),
 * JSON-escaped (echoed bodies), escaped in an agent command and, for a credential pair, the base64 `user:password` of Basic auth and docker configs.
 */
export function addSecret(value: string | undefined, options: { registerWithAgent?: boolean } = {}): void {
  if (!value) return;
  // And as an agent command carries it: task-lib's own debug lines (Agent.ProxyPassword=... when the
  // pipeline debugs) reach the stream guard escaped, `%` as `%AZP25`, `;` as `%3B`, `]` as `%5D`.
  const forms = [value, value.trim(), encodeURIComponent(value), JSON.stringify(value).slice(1, -1), escapeData(value), escapeProperty(value)];
  for (const f of forms) remember(f);
  if (options.registerWithAgent && value.length >= MIN_SECRET_LENGTH) rawCommand('task.setsecret', {}, value);
}

/** A username/password pair: the password, and base64(user:password) as Basic auth and docker configs carry it. */
export function addCredentialPair(username: string, password: string, options: { registerWithAgent?: boolean } = {}): void {
  addSecret(password, options);
  const pair = Buffer.from(`${username}:${password}`).toString('base64');
  addSecret(pair, options);
  // DigitalOcean issues `<token>:<token>`: the user name is then a secret too.
  if (username === password) addSecret(username, options);
}

export function redact(text: string): string {
  let out = text;
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join(MASK);
  return out;
}

const LINE_BREAK_ESCAPES: Record<string, string> = {
  '\r\n': '\\r\\n',
  '\n': '\\n',
  '\r': '\\r',
  '\u000b': '\\v',
  '\u000c': '\\f',
  '\u0085': '\\u0085',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/** One physical line: line breaks and other control characters (tab aside) become visible escapes. */
export function flatten(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/\r\n|[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]/g, (c) => {
    return LINE_BREAK_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** No agent command and no formatting prefix survives in text: `##vso[` and `##[` lose their bracket. */
export function neutralise(text: string): string {
  return text.replace(/##(vso)?\[/gi, (_m, vso: string | undefined) => `##${vso ?? ''}_[`);
}

/** What any text becomes before it is printed: secrets out, one line, no commands. */
export function clean(text: string): string {
  return neutralise(flatten(redact(text)));
}

/** A value quoted in a one-line message: cleaned and cut to `max` characters. */
export function quote(value: string, max = 80): string {
  const c = clean(value);
  return c.length > max ? c.slice(0, max - 3) + '...' : c;
}

/** A Markdown table cell: cleaned, with the pipe escaped. */
export function mdCell(text: string): string {
  return clean(text).replace(/\|/g, '\\|');
}

// ---------------------------------------------------------------------------------------------
// The agent's command syntax (as task-lib's taskcommand.js writes it)

function escapeData(s: string): string {
  return s.replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/\]/g, '%5D').replace(/;/g, '%3B');
}

type Write = (chunk: string) => void;
const stdoutWrite = process.stdout.write.bind(process.stdout);
const stderrWrite = process.stderr.write.bind(process.stderr);
const rawOut: Write = (chunk) => void stdoutWrite(chunk);

function rawCommand(name: string, properties: Record<string, string>, message: string): void {
  const props = Object.entries(properties)
    .map(([k, v]) => `${k}=${escapeProperty(v)};`)
    .join('');
  rawOut(`##vso[${name}${props ? ' ' + props : ''}]${escapeData(message)}${os.EOL}`);
}

/** A command whose message and properties are data: cleaned first. */
function command(name: string, properties: Record<string, string>, message: string): void {
  const props: Record<string, string> = {};
  for (const [k, v] of Object.entries(properties)) props[k] = clean(v);
  rawCommand(name, props, clean(message));
}

// ---------------------------------------------------------------------------------------------
// What tasks print

export function info(line: string): void {
  rawOut(clean(line) + os.EOL);
}

export function debug(line: string): void {
  command('task.debug', {}, line);
}

export function warn(line: string): void {
  command('task.logissue', { type: 'warning' }, line);
}

export function progress(percent: number, text: string): void {
  command('task.setprogress', { value: String(Math.max(0, Math.min(100, Math.round(percent)))) }, text);
}

/** The logger handed to workflows: they print through it and never import the output layer's writers. */
export interface Logger {
  info(line: string): void;
  debug(line: string): void;
  warn(line: string): void;
  progress(percent: number, text: string): void;
}

export const logger: Logger = { info, debug, warn, progress };

export type TaskResultName = 'Succeeded' | 'SucceededWithIssues' | 'Failed' | 'Cancelled';

/** The one result line (plus the error or warning issue task-lib's setResult adds). */
export function setResult(result: TaskResultName, message: string): void {
  if (result === 'Failed') command('task.issue', { type: 'error', source: 'TaskInternal' }, message);
  if (result === 'SucceededWithIssues') command('task.issue', { type: 'warning', source: 'TaskInternal' }, message);
  command('task.complete', { result }, message);
}

/** Prepends a folder to PATH for later steps (and for this process). */
export function prependPath(dir: string): void {
  process.env['PATH'] = dir + path.delimiter + (process.env['PATH'] ?? '');
  command('task.prependpath', {}, dir);
}

/** Writes Markdown (secrets redacted) into the agent's temp folder and attaches it to the run's summary. */
export function uploadSummary(fileStem: string, markdown: string): string {
  const dir = process.env['AGENT_TEMPDIRECTORY'] || os.tmpdir();
  const file = path.join(dir, `${fileStem}-${process.pid}-${Date.now()}.md`);
  fs.writeFileSync(file, redact(markdown));
  command('task.uploadsummary', {}, file);
  return file;
}

// ---------------------------------------------------------------------------------------------
// Output variables: a value from a server is printed only when it fits its grammar

/**
 * A GC id: DigitalOcean promises only `uuid: string` (godo's fixtures use `mew-mew-id`), and the
 * task puts it in a URL path and an output variable, so it is an opaque token of URL-safe
 * (unreserved) characters, first one alphanumeric (never `.`, `..` or an option), at most 128.
 */
export const GC_ID_MAX = 128;
export const GC_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;
const REPO_PATH = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
/** RFC 6838 restricted-name: 1 to 127 characters, first alphanumeric. */
const MEDIA_NAME = '[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}';
export const MEDIA_TYPE = new RegExp(`^${MEDIA_NAME}/${MEDIA_NAME}$`);
/**
 * A status word: DigitalOcean's enum ("waiting for write JWTs to expire") and states it adds later
 * ("waiting for delete requests"): a letter, then letters, digits, spaces, `-` or `_`, at most 64.
 */
export const STATUS_WORD_MAX = 64;
export const STATUS_WORD = /^[A-Za-z](?:[A-Za-z0-9 _-]{0,62}[A-Za-z0-9])?$/;
/** RFC 3339 date-time (`T` and `Z` in either case, as RFC 3339 section 5.6 allows; fractions to nanoseconds). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** `host/repository`, in the registry's host and repository grammar. */
function isRepositoryName(name: string): boolean {
  const slash = name.indexOf('/');
  return slash > 0 && HOST.test(name.slice(0, slash)) && REPO_PATH.test(name.slice(slash + 1));
}

function isPinnedReference(v: string): boolean {
  const at = v.indexOf('@');
  return at >= 0 && DIGEST.test(v.slice(at + 1)) && isRepositoryName(v.slice(0, at));
}

/** host/repo:tag, in the same host and repository grammar as a pinned reference. */
function isTaggedReference(v: string): boolean {
  const colon = v.lastIndexOf(':');
  if (colon <= v.indexOf('/') || !/^[\w][\w.-]{0,127}$/.test(v.slice(colon + 1))) return false;
  return isRepositoryName(v.slice(0, colon));
}

export const GRAMMARS = {
  /** A GC id (opaque, URL-safe: see GC_ID). */
  gcId: (v: string) => GC_ID.test(v),
  digest: (v: string) => DIGEST.test(v),
  sha256Hex: (v: string) => /^[a-f0-9]{64}$/.test(v),
  mediaType: (v: string) => MEDIA_TYPE.test(v),
  statusWord: (v: string) => STATUS_WORD.test(v),
  timestamp: (v: string) => RFC3339.test(v),
  wholeNumber: (v: string) => /^\d{1,19}$/.test(v),
  boolean: (v: string) => v === 'true' || v === 'false',
  /** A pickList value (untagged-manifests-only). */
  pickName: (v: string) => /^[a-z][a-z0-9-]{0,62}$/.test(v),
  /** A value this task made itself (a path, a version it validated): printed cleaned. */
  own: (v: string) => clean(v) === v,
  pinnedReference: isPinnedReference,
  /** `host/repo:tag`: an image reference by tag, as the registry's grammar allows it. */
  taggedReference: isTaggedReference,
  /** An SPKI public key in PEM (base64 lines of at most 64 characters between the markers). */
  publicKeyPem: (v: string) => /^-----BEGIN PUBLIC KEY-----\n(?:[A-Za-z0-9+/=]{1,64}\n){1,40}-----END PUBLIC KEY-----\n?$/.test(v),
} as const;
export type Grammar = keyof typeof GRAMMARS;

export class OutputGrammarError extends Error {
  constructor(
    readonly output: string,
    grammar: string,
  ) {
    super(`Output '${output}': the value the server sent does not fit its grammar (${grammar}); it was not set.`);
    this.name = 'OutputGrammarError';
  }
}

export interface OutputSpec {
  grammar: Grammar;
  /** A comma-separated list of such values (digests, mediaTypes). */
  list?: boolean;
  /** '' is allowed (an output with nothing to report). */
  optional?: boolean;
}

/**
 * One output of a task, declared once: its grammar, and how its value is read from what the task's
 * workflow produced (undefined: not set, e.g. not known yet, or nothing of its kind to report).
 */
export interface OutputDeclaration<R> extends OutputSpec {
  value: (result: R) => string | number | boolean | undefined;
}

/** A task's outputs, in the order they are set; the settings drift test holds it against task.json. */
export type OutputTable<R> = Readonly<Record<string, OutputDeclaration<R>>>;

/** The values a table reads from `result` (as strings, '' for an output that is not set). */
export function outputValues<R>(table: OutputTable<R>, result: R): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, decl] of Object.entries(table)) values[name] = String(decl.value(result) ?? '');
  return values;
}

/** Sets an output variable (isOutput=true) after checking the value against its grammar. */
export function setOutput(name: string, value: string | number | boolean, spec: OutputSpec): void {
  const v = String(value);
  const fits = GRAMMARS[spec.grammar];
  const parts = spec.list ? v.split(',') : [v];
  const ok = (v === '' && (spec.optional || spec.list)) || parts.every((p) => fits(p));
  if (!ok) throw new OutputGrammarError(name, spec.grammar);
  rawCommand('task.setvariable', { variable: name, isOutput: 'true', issecret: 'false' }, v);
}

// ---------------------------------------------------------------------------------------------
// Guards on the streams, installed by runTask before anything else runs

const SECRET_ENV =
  /^(SECRET_.+|AGENT_PROXYPASSWORD|AGENT_CLIENTCERTPASSWORD|SYSTEM_ACCESSTOKEN|DIGITALOCEAN_ACCESS_TOKEN|ENDPOINT_AUTH_PARAMETER_.+_(APITOKEN|ACCESSTOKEN|PASSWORD|TOKEN|SECRET|KEY|SERVICEPRINCIPALKEY))$/i;

/** The secrets the agent hands every task: secret variables, endpoint secrets, the job token, the proxy password. */
export function collectAmbientSecrets(env: Readonly<Record<string, string | undefined>> = agentEnvironment()): void {
  for (const [k, v] of Object.entries(env)) {
    if (!v) continue;
    if (SECRET_ENV.test(k)) addSecret(v);
    if (/^ENDPOINT_AUTH_[^_]/i.test(k) && !/^ENDPOINT_AUTH_(PARAMETER|SCHEME)_/i.test(k)) addEndpointBlob(v);
    if (/^AGENT_PROXYURL$/i.test(k)) addUrlPassword(v);
  }
}

function addEndpointBlob(json: string): void {
  for (const [k, v] of Object.entries(endpointAuthParameters(json))) if (isSecretParameter(k)) addSecret(v);
}

/** A password in a URL's user info is a secret from then on: as written in the URL, and decoded. */
export function addUrlPassword(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return; /* not a URL */
  }
  if (!u.password) return;
  addSecret(u.password);
  try {
    addSecret(decodeURIComponent(u.password));
  } catch {
    /* a malformed escape: the written form is registered */
  }
}

type StreamWrite = typeof process.stdout.write;

/** Wraps a stream's write so that whatever else prints (task-lib, tool-lib, Node) is redacted too. */
function guard(original: StreamWrite, neutraliseAll: boolean): StreamWrite {
  return function guardedWrite(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
    const safe = neutraliseAll ? neutralise(redact(text)) : redact(text);
    if (typeof encoding === 'function') return original(safe, encoding as (err?: Error | null) => void);
    return original(safe, 'utf8', callback as ((err?: Error | null) => void) | undefined);
  } as StreamWrite;
}

let guarded = false;

/**
 * Guards stdout and stderr: from here on whatever anything prints (task-lib, tool-lib, Node) has the
 * task's secrets redacted, and stderr's agent commands neutralised. runTask calls it before it loads
 * any of the task's code; task-lib must not load before it, because task-lib's load prints (in debug
 * mode `Agent.ProxyPassword=<value>`) and reads its debug switch once, at load.
 */
export function installOutputGuard(): void {
  if (guarded) return;
  guarded = true;
  collectAmbientSecrets();
  // task-lib's own debug lines (input values, variables) appear only in debug mode (documented switch).
  process.env['DISTRIBUTEDTASK_TASKS_NODE_SKIPDEBUGLOGSWHENDEBUGMODEOFF'] ??= 'true';
  process.stdout.write = guard(stdoutWrite, false);
  process.stderr.write = guard(stderrWrite, true);
}

/** Whether the guard is in place (runTask refuses to load a task's code without it). */
export function outputGuarded(): boolean {
  return guarded;
}

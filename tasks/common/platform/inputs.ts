// Task inputs and service connections, read from the variables the agent passed this process
// (INPUT_<NAME>, ENDPOINT_URL_<id>, ENDPOINT_AUTH_PARAMETER_<id>_<KEY>), as they were when the task
// started. task-lib's getters would print every value they return in a debug line.
import { agentVariable, endpointAuthParameters, isSecretParameter } from './agent';
import { UserError } from './errors';
import { addSecret, addUrlPassword, quote, warn } from './output';
// Loading task-lib moves inputs, endpoint credentials and secret variables out of process.env, so
// no child process inherits them.
import 'azure-pipelines-task-lib/task';

function envKey(name: string): string {
  return 'INPUT_' + name.replace(/[. ]/g, '_').toUpperCase();
}

/** The raw value of an input: undefined when the agent did not pass it at all, '' when it passed it empty. */
function rawInput(name: string): string | undefined {
  return agentVariable(envKey(name));
}

/**
 * An Azure Pipelines macro the agent left as text: `$(name)` or `$(step.output)`. The agent expands a
 * macro only when the variable exists; when the step that sets it was skipped (a failed build before
 * it), the task receives the macro itself, which is no value.
 */
const UNEXPANDED_MACRO = /^\$\([A-Za-z0-9_][A-Za-z0-9_.-]{0,199}\)$/;

const macroInputs = new Set<string>();

/** The inputs whose whole value (or one of whose items) was an unexpanded macro, read as empty. */
export function unexpandedMacroInputs(): ReadonlySet<string> {
  return macroInputs;
}

/** '' for an unexpanded macro (with one warning naming it), else the value itself. */
function withoutMacro(name: string, value: string): string {
  if (!UNEXPANDED_MACRO.test(value.trim())) return value;
  if (!macroInputs.has(name)) {
    warn(
      `Input '${name}' is the unexpanded macro '${quote(value.trim(), 210)}': it counts as empty. The step or variable that sets it usually did not run (it was skipped or failed), or its name is misspelled.`,
    );
  }
  macroInputs.add(name);
  return '';
}

export function readString(name: string, options: { required?: boolean; default?: string } = {}): string {
  const v = withoutMacro(name, rawInput(name) ?? options.default ?? '').trim();
  if (options.required && v === '') throw new UserError(`Input '${name}' is required and was empty.`);
  return v;
}

/** Booleans must be exactly true or false (any case); empty is an error, never a silent false. */
export function readBool(name: string, defaultValue: boolean): boolean {
  const raw = rawInput(name);
  if (raw === undefined) return defaultValue;
  const v = raw.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UserError(`Input '${name}' must be 'true' or 'false', got '${quote(raw)}'.`);
}

/** A whole number in [min, max]. */
export function readInt(name: string, defaultValue: number, min: number, max: number): number {
  const raw = rawInput(name);
  if (raw === undefined) return defaultValue;
  const v = raw.trim();
  if (!/^[+-]?\d+$/.test(v)) {
    throw new UserError(`Input '${name}' must be a whole number from ${min} to ${max}, got '${quote(raw)}'.`);
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UserError(`Input '${name}' must be a whole number from ${min} to ${max}, got '${quote(raw)}'.`);
  }
  return n;
}

export function readPick<T extends string>(name: string, allowed: readonly T[], defaultValue: T): T {
  const raw = rawInput(name);
  if (raw === undefined) return defaultValue;
  const v = raw.trim();
  const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  if (!hit) throw new UserError(`Input '${name}' must be one of ${allowed.join(', ')}, got '${quote(raw)}'.`);
  return hit;
}

/** Non-empty trimmed lines (a line that is an unexpanded macro counts as empty). */
export function readLines(name: string): string[] {
  return readString(name)
    .split(/\r?\n/)
    .map((l) => withoutMacro(name, l).trim())
    .filter((l) => l !== '');
}

/** Comma- or newline-separated names (an item that is an unexpanded macro counts as empty). */
export function readList(name: string): string[] {
  return readString(name)
    .split(/[,\r\n]+/)
    .map((l) => withoutMacro(name, l).trim())
    .filter((l) => l !== '');
}

/** A secret input: redacted from everything the task prints from now on. */
export function readSecret(name: string): string {
  const value = withoutMacro(name, rawInput(name) ?? '');
  addSecret(value);
  return value;
}

/** An endpoint authorization parameter (the agent's ENDPOINT_AUTH_PARAMETER_<id>_<KEY>, else its ENDPOINT_AUTH_<id> JSON). */
export function readEndpointAuthParam(endpointId: string, key: string): string {
  let value = agentVariable('ENDPOINT_AUTH_PARAMETER_' + endpointId + '_' + key.toUpperCase());
  if (value === undefined) {
    const params = endpointAuthParameters(agentVariable('ENDPOINT_AUTH_' + endpointId));
    value = Object.entries(params).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
  }
  if (value && isSecretParameter(key)) addSecret(value);
  return value ?? '';
}

export function readEndpointUrl(endpointId: string): string {
  return agentVariable('ENDPOINT_URL_' + endpointId) ?? '';
}

/** An http(s) URL input without user info; a password in it is a secret from then on (for the refusal's own line). */
export function requireHttpUrl(name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`Input '${name}' must be an http(s) URL, got '${quote(value)}'.`);
  }
  addUrlPassword(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UserError(`Input '${name}' must be an http(s) URL, got '${quote(value)}'.`);
  }
  // A URL input reaches cosign's argv and the flag cache file, which outlives the task: no credentials
  // in it. The refusal names the URL without its user info (a user name alone may be a token).
  if (url.username || url.password) {
    const bare = `${url.protocol}//${url.host}${url.pathname}`;
    throw new UserError(`Input '${name}' must not carry credentials (user:password@host) in its URL: use '${quote(bare)}' without them.`);
  }
  return url;
}

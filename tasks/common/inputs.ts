// Loading task-lib moves INPUT_*/ENDPOINT_AUTH_* into its vault (and out of process.env).
import 'azure-pipelines-task-lib/task';
// The vault is read directly for secrets: task-lib's getInput and
// getEndpointAuthorizationParameter echo values into ##vso[task.debug] lines.
import * as tlInternal from 'azure-pipelines-task-lib/internal';
import { UserError } from './errors';

function envKey(name: string): string {
  return 'INPUT_' + name.replace(/[. ]/g, '_').toUpperCase();
}

/**
 * The raw value of an input: undefined when the agent did not pass it at all,
 * '' when it passed an empty value. task-lib cannot tell these apart (it keeps
 * empty values out of its vault and leaves them in process.env), so we look.
 */
function rawInput(name: string): string | undefined {
  // Straight from the vault: tl.getInput would echo the value into a debug
  // line, and any input may carry a secret someone pasted (e.g. `arguments`).
  const v = tlInternal._vault.retrieveSecret(envKey(name));
  if (v !== undefined && v !== null && v !== '') return v;
  return process.env[envKey(name)] === '' ? '' : undefined;
}

function oneLine(value: string): string {
  const flat = value.replace(/\r?\n/g, '\\n');
  return flat.length > 80 ? flat.slice(0, 77) + '...' : flat;
}

export function readString(name: string, options: { required?: boolean; default?: string } = {}): string {
  const v = (rawInput(name) ?? options.default ?? '').trim();
  if (options.required && v === '') throw new UserError(`Input '${name}' is required and was empty.`);
  return v;
}

/** Booleans must be exactly true or false (any case); empty is an error (seed 001). */
export function readBool(name: string, defaultValue: boolean): boolean {
  const raw = rawInput(name);
  if (raw === undefined) return defaultValue;
  const v = raw.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UserError(`Input '${name}' must be 'true' or 'false', got '${oneLine(raw)}'.`);
}

/** A whole number in [min, max]. */
export function readInt(name: string, defaultValue: number, min: number, max: number): number {
  const raw = rawInput(name);
  if (raw === undefined) return defaultValue;
  const v = raw.trim();
  if (!/^[+-]?\d+$/.test(v)) {
    throw new UserError(`Input '${name}' must be a whole number from ${min} to ${max}, got '${oneLine(raw)}'.`);
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UserError(`Input '${name}' must be a whole number from ${min} to ${max}, got '${oneLine(raw)}'.`);
  }
  return n;
}

export function readPick<T extends string>(name: string, allowed: readonly T[], defaultValue: T): T {
  const raw = rawInput(name);
  if (raw === undefined) return defaultValue;
  const v = raw.trim();
  const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  if (!hit) throw new UserError(`Input '${name}' must be one of ${allowed.join(', ')}, got '${oneLine(raw)}'.`);
  return hit;
}

/** Non-empty trimmed lines. */
export function readLines(name: string): string[] {
  return readString(name)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** Comma- or newline-separated names. */
export function readList(name: string): string[] {
  return readString(name)
    .split(/[,\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** A secret input, read without task-lib echoing it to the debug log. */
export function readSecret(name: string): string {
  return rawInput(name) ?? '';
}

/** An endpoint authorization parameter, read without echoing it. */
export function readEndpointAuthParam(endpointId: string, key: string): string {
  return tlInternal._vault.retrieveSecret('ENDPOINT_AUTH_PARAMETER_' + endpointId + '_' + key.toUpperCase()) ?? '';
}

export function readEndpointUrl(endpointId: string): string {
  return process.env['ENDPOINT_URL_' + endpointId] ?? '';
}

export function requireHttpUrl(name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`Input '${name}' must be an http(s) URL, got '${oneLine(value)}'.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UserError(`Input '${name}' must be an http(s) URL, got '${oneLine(value)}'.`);
  }
  return url;
}

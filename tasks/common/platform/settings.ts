// Each task's settings as one declarative table: every input's name, kind, default and range, in
// one place that a test holds against the task's task.json. readSettings reads the whole table
// through inputs.ts, so a malformed value fails with one line naming the input before any work.
import { readBool, readInt, readLines, readList, readPick, readSecret, readString } from './inputs';

export type Setting =
  | { readonly kind: 'string'; readonly default: string }
  | { readonly kind: 'secret' }
  | { readonly kind: 'connection'; readonly endpointType: string }
  | { readonly kind: 'lines' }
  | { readonly kind: 'list' }
  | { readonly kind: 'bool'; readonly default: boolean }
  | { readonly kind: 'int'; readonly default: number; readonly min: number; readonly max: number }
  | { readonly kind: 'pick'; readonly options: readonly string[]; readonly default: string };

export type SettingsTable = Readonly<Record<string, Setting>>;

type ValueOf<S> = S extends { kind: 'bool' }
  ? boolean
  : S extends { kind: 'int' }
    ? number
    : S extends { kind: 'lines' | 'list' }
      ? string[]
      : S extends { kind: 'pick'; options: readonly (infer O)[] }
        ? O
        : string;

/** The values a table reads as: booleans, whole numbers, lists, pickList names and strings. */
export type SettingValues<T extends SettingsTable> = { -readonly [K in keyof T]: ValueOf<T[K]> };

/** A string; empty or absent reads as `defaultValue`. */
export function text(defaultValue = ''): { kind: 'string'; default: string } {
  return { kind: 'string', default: defaultValue };
}

/** A secret string: redacted from everything the task prints once read. */
export function secret(): { kind: 'secret' } {
  return { kind: 'secret' };
}

/** A service connection of `endpointType`: reads as its id ('' when none is chosen). */
export function connection(endpointType: string): { kind: 'connection'; endpointType: string } {
  return { kind: 'connection', endpointType };
}

/** Non-empty trimmed lines of a multi-line input. */
export function lines(): { kind: 'lines' } {
  return { kind: 'lines' };
}

/** Comma- or newline-separated names. */
export function list(): { kind: 'list' } {
  return { kind: 'list' };
}

/** Exactly true or false (any case); empty is an error, never a silent false. */
export function bool(defaultValue: boolean): { kind: 'bool'; default: boolean } {
  return { kind: 'bool', default: defaultValue };
}

/** A whole number from `min` to `max`. */
export function int(defaultValue: number, min: number, max: number): { kind: 'int'; default: number; min: number; max: number } {
  return { kind: 'int', default: defaultValue, min, max };
}

/** One of `options` (any case; read back in the table's spelling). */
export function pick<const O extends readonly string[]>(options: O, defaultValue: O[number]): { kind: 'pick'; options: O; default: O[number] } {
  return { kind: 'pick', options, default: defaultValue };
}

function readSetting(name: string, setting: Setting): unknown {
  switch (setting.kind) {
    case 'string':
      return readString(name) || setting.default;
    case 'secret':
      return readSecret(name);
    case 'connection':
      return readString(name);
    case 'lines':
      return readLines(name);
    case 'list':
      return readList(name);
    case 'bool':
      return readBool(name, setting.default);
    case 'int':
      return readInt(name, setting.default, setting.min, setting.max);
    case 'pick':
      return readPick(name, setting.options, setting.default);
  }
}

/** Every setting of `table`, read in table order and checked against its kind and range. */
export function readSettings<T extends SettingsTable>(table: T): SettingValues<T> {
  const values: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(table)) values[name] = readSetting(name, setting);
  return values as SettingValues<T>;
}

// The one reader of agent commands (`##vso[area.event key=value;...]message`) in what a task printed,
// for every test, the bench and the demo: a line into {command, properties, message}, a whole output
// into its commands, and what the agent makes of them (outputs, result, errors, warnings).
//
// The grammar, as the agent reads a task's stdout: lines end at \r\n, \n or a lone \r; a command
// line starts with `##vso[` (in any case); the command name runs to the first space or `]`; the
// properties are `;`-separated `key=value` pairs up to the first `]`; the message is the rest of the
// line, whatever it holds (U+2028 included). Values are unescaped as task-lib escapes them.

/** The agent's command prefix, as task-lib prints it. */
export const VSO_PREFIX = '##vso[';

export interface VsoCommand {
  command: string;
  properties: Record<string, string>;
  message: string;
}

/** What the agent makes of a task's commands. */
export interface TaskOutcome {
  /** Every command, parsed and unescaped. */
  commands: VsoCommand[];
  /** Output variables set with task.setvariable. */
  outputs: Record<string, string>;
  /** The result of task.complete: Succeeded, SucceededWithIssues, Failed, Cancelled. */
  result: string | undefined;
  /** The message of task.complete. */
  resultMessage: string;
  /** task.issue / task.logissue messages of type error and warning. */
  errors: string[];
  warnings: string[];
}

const COMMAND = /^##vso\[([^\s\]]+)(?: ([^\]]*))?\]([\s\S]*)$/i;
const NAME = /^##vso\[([^\s\]]+)/i;

/** The lines of an output, as the agent splits them (\r\n, \n or a lone \r). */
export function outputLines(text: string): string[] {
  return text.split(/\r\n|\n|\r/);
}

/** A message (data) as task-lib escapes it: %0D, %0A, and % as %AZP25. */
export function unescapeData(s: string): string {
  return s
    .replace(/%0D/g, '\r')
    .replace(/%0A/g, '\n')
    .replace(/%AZP25/g, '%');
}

/** A property value as task-lib escapes it: the data escapes plus %3B (;) and %5D (]). */
export function unescapeProperty(s: string): string {
  return unescapeData(s).replace(/%3B/g, ';').replace(/%5D/g, ']');
}

/**
 * Every escape the agent knows, in any case: the view of a line a secret scan also looks at, so
 * that no escaping (%0A, %3B, ...) can split a secret out of its sight.
 */
export function unescapeAll(s: string): string {
  return s
    .replace(/%0D/gi, '\r')
    .replace(/%0A/gi, '\n')
    .replace(/%3B/gi, ';')
    .replace(/%5D/gi, ']')
    .replace(/%AZP25/g, '%');
}

/** The name of the command a line starts with (`##vso[<name>`, well-formed or not), or undefined. */
export function commandName(line: string): string | undefined {
  return NAME.exec(line)?.[1];
}

/** Whether a line starts the command `name` (task.setsecret, task.debug...), in any case. */
export function isCommand(line: string, name: string): boolean {
  return commandName(line)?.toLowerCase() === name.toLowerCase();
}

/** One line, exactly as printed (no trimming), into its command; undefined when it is not one. */
export function parseLine(line: string): VsoCommand | undefined {
  const m = COMMAND.exec(line);
  if (!m) return undefined;
  const properties: Record<string, string> = {};
  for (const kv of (m[2] ?? '').split(';')) {
    if (!kv.trim()) continue;
    const eq = kv.indexOf('=');
    if (eq < 0) properties[kv.trim()] = '';
    else properties[kv.slice(0, eq).trim()] = unescapeProperty(kv.slice(eq + 1));
  }
  return { command: m[1], properties, message: unescapeData(m[3]) };
}

/** Every command of an output (each line trimmed first, as the agent ignores surrounding blanks). */
export function parseOutput(text: string): VsoCommand[] {
  const out: VsoCommand[] = [];
  for (const line of outputLines(text)) {
    const c = parseLine(line.trim());
    if (c) out.push(c);
  }
  return out;
}

/** A property by its name in any case (the agent reads `variable=` and `VARIABLE=` alike). */
export function property(c: VsoCommand, name: string): string | undefined {
  const key = Object.keys(c.properties).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : c.properties[key];
}

/** The output variables, result and issues the agent takes from these commands. */
export function outcomeOf(commands: VsoCommand[]): TaskOutcome {
  const outputs: Record<string, string> = {};
  let result: string | undefined;
  let resultMessage = '';
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const c of commands) {
    if (c.command === 'task.setvariable') outputs[c.properties['variable']] = c.message;
    if (c.command === 'task.complete') {
      result = c.properties['result'];
      resultMessage = c.message;
    }
    if (c.command === 'task.issue' || c.command === 'task.logissue') {
      if (c.properties['type'] === 'error') errors.push(c.message);
      if (c.properties['type'] === 'warning') warnings.push(c.message);
    }
  }
  return { commands, outputs, result, resultMessage, errors, warnings };
}

/** parseOutput, then outcomeOf: what the agent makes of a task's stdout. */
export function taskOutcome(stdout: string): TaskOutcome {
  return outcomeOf(parseOutput(stdout));
}

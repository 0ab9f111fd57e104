// What the agent handed this process, as it handed it: INPUT_*, ENDPOINT_*, SECRET_*, AGENT_*, SYSTEM_*.
//
// Read once, when the task starts and before task-lib loads: task-lib's load moves inputs, endpoint
// credentials and secret variables out of process.env into its private vault, and its public getters
// (getInput, getVariable, getEndpointAuthorizationParameter) print every value they return in a debug
// line. Reading the agent's variables from this copy needs neither.
const startEnv: Readonly<Record<string, string | undefined>> = Object.freeze({ ...process.env });

/**
 * A variable as the agent passed it (undefined when it was not passed at all). The agent upper-cases
 * some names (ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN) and not others (endpoint ids),
 * so the exact name is tried first, then its upper-case form.
 */
export function agentVariable(envName: string): string | undefined {
  return startEnv[envName] ?? startEnv[envName.toUpperCase()];
}

/** An agent variable by its pipeline name (Agent.ProxyPassword): the secret form first, then the public one. */
export function pipelineVariable(name: string): string | undefined {
  const key = name.replace(/[. ]/g, '_').toUpperCase();
  return startEnv['SECRET_' + key] ?? startEnv[key];
}

/**
 * The release this task runs in when it runs in a classic release pipeline, else undefined. The agent
 * sets Release.ReleaseId ("the identifier of the current release record", Microsoft's "Classic
 * release and artifacts variables") only there; YAML runs and classic builds have no release record.
 * In a release, Build.BuildId names the build that produced the primary artifact, not this run.
 */
export function classicReleaseId(): string | undefined {
  const id = (pipelineVariable('Release.ReleaseId') ?? '').trim();
  return id === '' ? undefined : id;
}

/** Endpoint authorization parameters whose values are secrets, by their name (apitoken, password...). */
export function isSecretParameter(name: string): boolean {
  return /token|password|secret|key/i.test(name);
}

/** The string parameters of the agent's ENDPOINT_AUTH_<id> JSON ({"parameters": {...}, "scheme": ...}); {} when it is not that. */
export function endpointAuthParameters(json: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    const params = (JSON.parse(json ?? '{}') as { parameters?: Record<string, unknown> }).parameters ?? {};
    for (const [k, v] of Object.entries(params)) if (typeof v === 'string') out[k] = v;
  } catch {
    /* not the agent's JSON: no parameters */
  }
  return out;
}

/** The agent's temp folder (Agent.TempDirectory), or '' outside an agent. */
export function agentTempDirectory(): string {
  return (agentVariable('AGENT_TEMPDIRECTORY') ?? '').trim();
}

/** The agent's tool cache (Agent.ToolsDirectory), or '' outside an agent. */
export function agentToolsDirectory(): string {
  return (agentVariable('AGENT_TOOLSDIRECTORY') ?? '').trim();
}

/** Every variable the agent passed (for the output layer's collection of secrets). */
export function agentEnvironment(): Readonly<Record<string, string | undefined>> {
  return startEnv;
}

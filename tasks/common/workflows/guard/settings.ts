// The guard's inputs: shared by DoRegistryGcWait@1 and Cosign@1, each with its own timeout inputs.
import { classicReleaseId } from '../../platform/agent';
import { UserError } from '../../platform/errors';
import { SettingValues, SettingsTable, connection, int, list, pick, text } from '../../platform/settings';
import { validateRegistryName } from '../../services/digitalocean';

export interface GuardSettings {
  registry: string;
  stages: string[];
  timeoutSeconds: number;
  pollIntervalSeconds: number;
  settleSeconds: number;
  onTimeout: 'fail' | 'warn';
}

/** The guard's inputs, shared by DoRegistryGcWait@1 and Cosign@1 (each adds its own timeout inputs). */
export const GUARD_SETTINGS = {
  registry: text(),
  waitForStages: list(),
  pollIntervalSeconds: int(10, 1, 3600),
  settleSeconds: int(30, 0, 3600),
} as const satisfies SettingsTable;

/** The inputs of DoRegistryGcWait@1, as its task.json declares them. */
export const GC_WAIT_SETTINGS = {
  digitalOceanConnection: connection('digitalocean'),
  ...GUARD_SETTINGS,
  timeoutMinutes: int(30, 1, 1440),
  onTimeout: pick(['fail', 'warn'], 'fail'),
  timeoutSeconds: int(0, 0, 86_400),
} as const satisfies SettingsTable;

/**
 * The guard's settings from its inputs: the registry name checked against DigitalOcean's grammar
 * (when given), the timeout in seconds (a seconds override above 0 replaces the minutes), and what
 * a timeout means (Cosign@1 has no onTimeout input: a timeout fails it). In a classic release,
 * waitForStages is refused: the timeline it would read is Build.BuildId's, the artifact's build.
 */
export function guardSettingsFrom(
  values: SettingValues<typeof GUARD_SETTINGS>,
  timeout: { minutes: number; seconds: number },
  onTimeout: 'fail' | 'warn',
): GuardSettings {
  const releaseId = classicReleaseId();
  if (releaseId !== undefined && values.waitForStages.length > 0) {
    throw new UserError(
      `Input 'waitForStages' cannot be used in a classic release pipeline (release ${releaseId}): the build timeline it reads is the artifact's build, not this release. ` +
        "Leave it empty and order the release's stages instead (the stage's pre-deployment trigger 'After stage'); the guard still waits for GC and settleSeconds.",
    );
  }
  return {
    registry: validateRegistryName('registry', values.registry),
    stages: values.waitForStages,
    timeoutSeconds: timeout.seconds > 0 ? timeout.seconds : timeout.minutes * 60,
    pollIntervalSeconds: values.pollIntervalSeconds,
    settleSeconds: values.settleSeconds,
    onTimeout,
  };
}

// The inputs of DoRegistryGarbageCollection@1 and the settings the run reads from them.
import { SettingValues, SettingsTable, bool, connection, int, pick, text } from '../../platform/settings';
import { GC_TYPES, GcTypeInput, validateRegistryName } from '../../services/digitalocean';

/** DoRegistryGarbageCollection@1: what to do when a GC is already running. */
export const IF_ALREADY_RUNNING = ['wait', 'adopt', 'skip', 'fail'] as const;
export type IfAlreadyRunning = (typeof IF_ALREADY_RUNNING)[number];

export interface GcRunSettings {
  registry: string;
  gcType: GcTypeInput;
  ifAlreadyRunning: IfAlreadyRunning;
  waitForCompletion: boolean;
  timeoutSeconds: number;
  pollIntervalSeconds: number;
  warnAfterSeconds: number;
  cancelOnTimeout: boolean;
  failOnGcFailure: boolean;
}

/** The inputs of DoRegistryGarbageCollection@1, as its task.json declares them. */
export const GC_RUN_SETTINGS = {
  digitalOceanConnection: connection('digitalocean'),
  registry: text(),
  gcType: pick(Object.keys(GC_TYPES) as GcTypeInput[], 'untagged-manifests-and-unreferenced-blobs'),
  ifAlreadyRunning: pick(IF_ALREADY_RUNNING, 'wait'),
  waitForCompletion: bool(true),
  timeoutMinutes: int(60, 1, 1440),
  timeoutSeconds: int(0, 0, 86_400),
  pollIntervalSeconds: int(10, 1, 3600),
  warnAfterMinutes: int(15, 1, 1440),
  cancelOnTimeout: bool(false),
  failOnGcFailure: bool(true),
} as const satisfies SettingsTable;

/** The GC run's settings from its inputs (no network): the registry name checked, timeouts in seconds. */
export function gcRunSettingsFrom(values: SettingValues<typeof GC_RUN_SETTINGS>): GcRunSettings {
  return {
    registry: validateRegistryName('registry', values.registry),
    gcType: values.gcType,
    ifAlreadyRunning: values.ifAlreadyRunning,
    waitForCompletion: values.waitForCompletion,
    timeoutSeconds: values.timeoutSeconds > 0 ? values.timeoutSeconds : values.timeoutMinutes * 60,
    pollIntervalSeconds: values.pollIntervalSeconds,
    warnAfterSeconds: values.warnAfterMinutes * 60,
    cancelOnTimeout: values.cancelOnTimeout,
    failOnGcFailure: values.failOnGcFailure,
  };
}

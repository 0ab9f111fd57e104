// DoRegistryGarbageCollection@1's workflow: settings, the run, what it reports.
export { GC_RUN_SETTINGS, GcRunSettings, IF_ALREADY_RUNNING, gcRunSettingsFrom } from './settings';
export { GcRunResult, runGarbageCollection } from './run';
export { GC_RUN_OUTPUTS, GcAction, GcReport } from './summary';
export { gcRunTask } from './task';

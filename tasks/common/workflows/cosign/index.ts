// Cosign@1's workflow: its settings, the job in phases, the summary it writes.
export { COSIGN_SETTINGS, CosignTaskSettings, cosignSettingsFrom } from './settings';
export { ImageResult, JobProgress, JobResult, Target } from './context';
export { cosignArgv, runCosignJob } from './job';
export { jobFailureMarkdown, summaryMarkdown } from './summary';
export { COSIGN_OUTPUTS, CosignReport, cosignTask } from './outputs';

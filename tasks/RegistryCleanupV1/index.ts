// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { info, logger, setOutput, uploadSummary, warn } from '../common/platform/output';
import { runTask } from '../common/platform/task';
import { UserError } from '../common/platform/errors';
import { readSettings } from '../common/platform/settings';
import { CLEANUP_SETTINGS, cleanupSettingsFrom, cleanupSummary, cleanupVerdict, runCleanup } from '../common/workflows/tags/cleanup';

void runTask(async (signal) => {
  const settings = cleanupSettingsFrom(readSettings(CLEANUP_SETTINGS));

  const results = await runCleanup(settings, signal, logger);

  const verdict = cleanupVerdict(results, settings);
  setOutput('removedTags', verdict.removedTags.join(','), { grammar: 'taggedReference', list: true });
  setOutput('keptTags', verdict.keptTags.join(','), { grammar: 'taggedReference', list: true });
  uploadSummary('registry-cleanup', cleanupSummary(results));
  for (const w of verdict.warnings) warn(w);
  if (verdict.failure) throw new UserError(verdict.failure);
  info(verdict.message);
  return { withIssues: verdict.withIssues, message: verdict.message };
});

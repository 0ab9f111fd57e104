// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { info, logger, setOutput, uploadSummary, warn } from '../common/platform/output';
import { runTask } from '../common/platform/task';
import { UserError } from '../common/platform/errors';
import { readSettings } from '../common/platform/settings';
import { CLEANUP_SETTINGS, cleanupSettingsFrom, cleanupSummary, remediation, runCleanup } from '../common/workflows/tags/cleanup';

void runTask(async (signal) => {
  const settings = cleanupSettingsFrom(readSettings(CLEANUP_SETTINGS));

  const results = await runCleanup(settings, signal, logger);

  const of = (o: string) => results.filter((r) => r.outcome === o);
  setOutput(
    'removedTags',
    of('removed')
      .map((r) => r.tag)
      .join(','),
    { grammar: 'taggedReference', list: true },
  );
  setOutput(
    'keptTags',
    results
      .filter((r) => r.outcome !== 'removed' && r.outcome !== 'absent')
      .map((r) => r.tag)
      .join(','),
    { grammar: 'taggedReference', list: true },
  );
  uploadSummary('registry-cleanup', cleanupSummary(results));

  for (const r of of('kept')) warn(`Kept ${r.tag}: ${r.detail}.`);
  for (const r of of('refused'))
    warn(`The registry refused to delete ${r.tag} (${r.digest ?? 'digest unknown'}): ${r.detail}; ${remediation(r, !!settings.doConnection)}.`);
  const failed = of('failed');
  const message = `Cleanup: ${of('removed').length} removed, ${of('kept').length} kept, ${of('refused').length} refused, ${of('absent').length} not there.`;
  if (failed.length) throw new UserError(`${message} Could not clean up ${failed.map((r) => `${r.tag} (${r.detail})`).join('; ')}`);
  if (of('refused').length && settings.onRefused === 'fail') throw new UserError(`${message} (onRefused: fail)`);
  info(message);
  return { withIssues: of('refused').length > 0 || of('kept').length > 0, message };
});

import { CancelledError } from '../common/errors';
import { info, runTask, setOutput, uploadSummary } from '../common/vso';
import { readCosignSettings } from '../common/cosignsettings';
import { JobProgress, runCosignJob, summaryMarkdown } from '../common/cosignjob';

runTask(async (signal) => {
  const started = Date.now();
  const settings = readCosignSettings();
  const progress: JobProgress = { attempts: 0, gcWaitSeconds: 0 };
  let result;
  try {
    // Digests are set as soon as the registry answered, so a later failure still reports them.
    result = await runCosignJob(
      settings,
      signal,
      (images) => {
        setOutput('digests', images.map((i) => i.pinned).join(','));
        setOutput('digest', images[0]?.pinned ?? '');
        setOutput('mediaTypes', images.map((i) => i.mediaType).join(','));
      },
      progress,
    );
  } catch (err) {
    // A failed run still tells the pipeline how far it got (e.g. for a condition: failed() step).
    if (!(err instanceof CancelledError) && !signal.aborted) {
      setOutput('attempts', progress.attempts);
      setOutput('gcWaitSeconds', progress.gcWaitSeconds);
      setOutput('durationSeconds', Math.round((Date.now() - started) / 1000));
      setOutput('skipped', false);
    }
    throw err;
  }

  setOutput('attempts', result.attempts);
  setOutput('gcWaitSeconds', result.gcWaitSeconds);
  setOutput('durationSeconds', result.durationSeconds);
  setOutput('skipped', result.skipped);
  uploadSummary('cosign', summaryMarkdown(settings, result));

  const what = result.skipped ? 'skipped (already present)' : `${settings.command} done`;
  info(`Cosign@1 ${what}: ${result.images.length} image(s), ${result.targets.length} manifest(s), attempts ${result.attempts}, GC wait ${result.gcWaitSeconds}s.`);
  return { message: `cosign ${what}` };
});

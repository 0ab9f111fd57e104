// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { info, logger, setOutput, uploadSummary } from '../common/platform/output';
import { runTask } from '../common/platform/task';
import { CancelledError, UserError, errorMessage } from '../common/platform/errors';
import { readSettings } from '../common/platform/settings';
import { COSIGN_SETTINGS, JobProgress, cosignSettingsFrom, jobFailureMarkdown, runCosignJob, summaryMarkdown } from '../common/workflows/cosign';

void runTask(async (signal) => {
  const started = Date.now();
  const settings = cosignSettingsFrom(readSettings(COSIGN_SETTINGS));
  const progress: JobProgress = { attempts: 0, gcWaitSeconds: 0 };
  let result;
  try {
    // Digests are set as soon as the registry answered, so a later failure still reports them.
    result = await runCosignJob(
      settings,
      signal,
      logger,
      (images) => {
        // Outputs name registry digests only: an image run by tag (resolveDigest false) has none to report.
        if (!images.every((i) => i.digest)) {
          info('resolveDigest is false and an image is given by tag: the digests, digest and mediaTypes outputs are not set.');
          return;
        }
        setOutput('digests', images.map((i) => i.pinned).join(','), { grammar: 'pinnedReference', list: true });
        setOutput('digest', images[0]?.pinned ?? '', { grammar: 'pinnedReference', optional: true });
        setOutput('mediaTypes', images.map((i) => i.mediaType).join(','), { grammar: 'mediaType', list: true });
      },
      progress,
      // The Key Vault key's public half, so a later step or another team can verify.
      (kv) => setOutput('publicKey', kv.pub.pem, { grammar: 'publicKeyPem' }),
    );
  } catch (err) {
    // A failed run still tells the pipeline how far it got (e.g. for a condition: failed() step).
    if (!(err instanceof CancelledError) && !signal.aborted) {
      setOutput('attempts', progress.attempts, { grammar: 'wholeNumber' });
      setOutput('gcWaitSeconds', progress.gcWaitSeconds, { grammar: 'wholeNumber' });
      setOutput('durationSeconds', Math.round((Date.now() - started) / 1000), { grammar: 'wholeNumber' });
      setOutput('skipped', false, { grammar: 'boolean' });
      uploadSummary('cosign', jobFailureMarkdown(settings, errorMessage(err), progress));
    }
    throw err;
  }

  setOutput('attempts', result.attempts, { grammar: 'wholeNumber' });
  setOutput('gcWaitSeconds', result.gcWaitSeconds, { grammar: 'wholeNumber' });
  setOutput('durationSeconds', result.durationSeconds, { grammar: 'wholeNumber' });
  setOutput('skipped', result.skipped, { grammar: 'boolean' });
  uploadSummary('cosign', summaryMarkdown(settings, result));
  if (result.failures.length === 1 && result.images.length === 1) throw new UserError(result.images[0].error!);
  if (result.failures.length > 0) {
    throw new UserError(`${result.failures.length} of ${result.images.length} images failed (the others are done): ${result.failures.join('; ')}`);
  }

  const what = result.skipped ? 'skipped (already present)' : `${settings.command} done`;
  info(
    `Cosign@1 ${what}: ${result.images.length} image(s), ${result.targets.length} manifest(s), attempts ${result.attempts}, GC wait ${result.gcWaitSeconds}s.`,
  );
  return { message: `cosign ${what}` };
});

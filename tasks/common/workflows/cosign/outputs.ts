// Cosign@1's outputs, declared once, and the task from its settings: the job, then its report. The
// digests are set as soon as the registry answered and the public key as soon as Key Vault gave it
// (publish), so a later failure still reports them; a failed run reports how far it got.
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { OutputTable } from '../../platform/output';
import { TaskContext, TaskRun } from '../../platform/task';
import { ImageResult, JobProgress, JobResult } from './context';
import { runCosignJob } from './job';
import { CosignTaskSettings } from './settings';
import { jobFailureMarkdown, summaryMarkdown } from './summary';

/** What Cosign@1's outputs read; a part not known yet (or not at all) is absent. */
export interface CosignReport {
  /** The resolved images, each by its registry digest. */
  images?: ImageResult[];
  publicKey?: string;
  attempts?: number;
  gcWaitSeconds?: number;
  durationSeconds?: number;
  skipped?: boolean;
}

const images = (r: CosignReport) => r.images;

/** The outputs of Cosign@1, in the order they are set. */
export const COSIGN_OUTPUTS: OutputTable<CosignReport> = {
  digests: {
    grammar: 'pinnedReference',
    list: true,
    value: (r) =>
      images(r)
        ?.map((i) => i.pinned)
        .join(','),
  },
  digest: { grammar: 'pinnedReference', optional: true, value: (r) => (r.images ? (r.images[0]?.pinned ?? '') : undefined) },
  mediaTypes: {
    grammar: 'mediaType',
    list: true,
    value: (r) =>
      images(r)
        ?.map((i) => i.mediaType)
        .join(','),
  },
  publicKey: { grammar: 'publicKeyPem', value: (r) => r.publicKey },
  attempts: { grammar: 'wholeNumber', value: (r) => r.attempts },
  gcWaitSeconds: { grammar: 'wholeNumber', value: (r) => r.gcWaitSeconds },
  durationSeconds: { grammar: 'wholeNumber', value: (r) => r.durationSeconds },
  skipped: { grammar: 'boolean', value: (r) => r.skipped },
};

/** Cosign@1: the job, with its digests and public key published as soon as they are known; then its report. */
export async function cosignTask(settings: CosignTaskSettings, context: Pick<TaskContext, 'signal' | 'log' | 'publish'>): Promise<TaskRun<CosignReport>> {
  const { signal, log, publish } = context;
  const started = Date.now();
  const progress: JobProgress = { attempts: 0, gcWaitSeconds: 0 };
  const onResolved = (resolved: ImageResult[]) => {
    // Outputs name registry digests only: an image run by tag (resolveDigest false) has none to report.
    if (!resolved.every((i) => i.digest)) {
      log.info('resolveDigest is false and an image is given by tag: the digests, digest and mediaTypes outputs are not set.');
      return;
    }
    publish(COSIGN_OUTPUTS, { images: resolved });
  };
  let result: JobResult;
  try {
    // The Key Vault key's public half, so a later step or another team can verify.
    result = await runCosignJob(settings, signal, log, onResolved, progress, (kv) => publish(COSIGN_OUTPUTS, { publicKey: kv.pub.pem }));
  } catch (err) {
    if (err instanceof CancelledError || signal.aborted) throw err;
    // A failed run still tells the pipeline how far it got (e.g. for a condition: failed() step).
    const durationSeconds = Math.round((Date.now() - started) / 1000);
    return {
      outputs: COSIGN_OUTPUTS,
      result: { attempts: progress.attempts, gcWaitSeconds: progress.gcWaitSeconds, durationSeconds, skipped: false },
      summary: { name: 'cosign', markdown: jobFailureMarkdown(settings, errorMessage(err), progress) },
      failure: err,
    };
  }
  return jobReport(settings, result);
}

/** A job that ran: its outputs and summary, then failed images fail the task. */
function jobReport(settings: CosignTaskSettings, result: JobResult): TaskRun<CosignReport> {
  const reported = {
    outputs: COSIGN_OUTPUTS,
    result: { attempts: result.attempts, gcWaitSeconds: result.gcWaitSeconds, durationSeconds: result.durationSeconds, skipped: result.skipped },
    summary: { name: 'cosign', markdown: summaryMarkdown(settings, result) },
  };
  const { failures, images: all } = result;
  if (failures.length === 1 && all.length === 1) return { ...reported, failure: new UserError(all[0].error!) };
  if (failures.length > 0) {
    return { ...reported, failure: new UserError(`${failures.length} of ${all.length} images failed (the others are done): ${failures.join('; ')}`) };
  }
  const what = result.skipped ? 'skipped (already present)' : `${settings.command} done`;
  const done = `Cosign@1 ${what}: ${all.length} image(s), ${result.targets.length} manifest(s), attempts ${result.attempts}, GC wait ${result.gcWaitSeconds}s.`;
  return { ...reported, closing: [{ level: 'info', text: done }], message: `cosign ${what}` };
}

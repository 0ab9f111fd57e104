// Cosign@1's build summary: one row per manifest with its digest, media type, attempts and result.
import { mdCell } from '../../platform/output';
import { formatDuration } from '../../platform/task';
import { describeKey } from '../../services/azure';
import { JobResult } from './context';
import { CosignTaskSettings } from './settings';

/** Every image with its digest, media type, attempts and result, on success and on failure. */
export function summaryMarkdown(s: CosignTaskSettings, r: JobResult): string {
  const lines: string[] = [];
  const failed = r.failures.length ? ` (${r.failures.length} of ${r.images.length} image(s) failed)` : '';
  lines.push(`### Cosign@1: ${s.command}${r.skipped ? ' (skipped: already present)' : ''}${failed}`, '');
  lines.push(`| image | digest | media type | platforms | attempts | result |`, `|---|---|---|---|---|---|`);
  // An image that failed before it had targets (its digest could not be resolved) still gets its row.
  r.images.forEach((img, i) => {
    if (img.error && !r.targets.some((t) => t.image === i)) lines.push(`| ${mdCell(img.input)} | - | - | - | - | failed |`);
  });
  for (const t of r.targets) {
    const img = r.images[t.image];
    const digest = t.pinned.includes('@') ? t.pinned.slice(t.pinned.indexOf('@') + 1) : '(tag)';
    const isMain = t.pinned === img.pinned;
    lines.push(
      `| ${mdCell(t.label)} | \`${digest}\` | ${isMain ? mdCell(img.mediaType) : 'platform manifest'} | ${isMain ? img.platforms || '-' : mdCell(t.platform ?? '')} | ${t.attempts} | ${t.status} |`,
    );
  }
  lines.push('', `- GC wait: ${formatDuration(r.gcWaitSeconds)}; total: ${formatDuration(r.durationSeconds)}; attempts (most for one manifest): ${r.attempts}`);
  lines.push(`- cosign: \`${r.cosign}\``);
  if (r.keyVaultKey) lines.push(`- signed in Azure Key Vault with key \`${mdCell(r.keyVaultKey)}\` (not in the transparency log)`);
  if (s.command === 'attest' || s.command === 'verify-attestation') lines.push(`- predicate type: \`${mdCell(s.predicateType)}\``);
  for (const n of r.notes) lines.push(`- ${n}`);
  if (r.failures.length) {
    lines.push('', '#### Failed', '');
    for (const f of r.failures) lines.push(`- ${mdCell(f)}`);
  }
  return lines.join('\n') + '\n';
}

/** When the job itself failed (the guard, credentials, cosign's flags): what failed and how far it got. */
export function jobFailureMarkdown(s: CosignTaskSettings, message: string, progress: { attempts: number; gcWaitSeconds: number }): string {
  return [
    `### Cosign@1: ${s.command} failed`,
    '',
    mdCell(message),
    '',
    `- images: ${s.images.map((i) => `\`${mdCell(i.original)}\``).join(', ')}`,
    ...(s.keyVault ? [`- Azure Key Vault key: \`${mdCell(describeKey(s.keyVault.ref))}\``] : []),
    `- GC wait: ${formatDuration(progress.gcWaitSeconds)}; attempts (most for one manifest): ${progress.attempts}`,
    '',
  ].join('\n');
}

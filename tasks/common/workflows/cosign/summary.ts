// Cosign@1's build summary: one row per manifest with its digest, media type, attempts and result.
import { mdCell } from '../../platform/output';
import { formatDuration } from '../../platform/task';
import { JobResult } from './job';
import { CosignTaskSettings } from './settings';

export function summaryMarkdown(s: CosignTaskSettings, r: JobResult): string {
  const lines: string[] = [];
  lines.push(`### Cosign@1: ${s.command}${r.skipped ? ' (skipped: already present)' : ''}`, '');
  lines.push(`| image | digest | media type | platforms | attempts | result |`, `|---|---|---|---|---|---|`);
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
  for (const n of r.notes) lines.push(`- ${n}`);
  return lines.join('\n') + '\n';
}

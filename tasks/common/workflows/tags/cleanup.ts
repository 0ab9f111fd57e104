// RegistryCleanup@1: after a failed run, remove what this run published and nothing else. A tag is
// removed only when it exists now and, where `digests` names its repository, still points at a
// digest this run produced; a tag that moved (another run pushed it since) is kept and reported.
// With a DigitalOcean connection the tags go through the DigitalOcean API, after the GC guard (a
// delete is a write, and the registry is read-only during GC); elsewhere through the OCI
// distribution API, and only when no tag outside the list points at the same manifest.
import { Limiter } from '../../platform/concurrency';
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { Logger, mdCell } from '../../platform/output';
import { RetryError, withRetry } from '../../platform/retry';
import { SettingValues, SettingsTable, bool, int, list, pick } from '../../platform/settings';
import { DockerConfigHandle } from '../../services/credentials';
import { DeleteRefusedError, DigitalOceanClient } from '../../services/digitalocean';
import {
  ImageReference,
  RegistryError,
  ResolveOptions,
  classifyRegistryFailure,
  deleteManifestByDigest,
  parseImageReference,
  repoName,
  resolveImage,
  tagDigests,
} from '../../services/oci';
import { readTimelineClient } from '../../services/timeline';
import {
  REGISTRY_ACCESS_SETTINGS,
  RegistryAccess,
  SHORT_REGISTRY_BUDGET,
  describeCredentials,
  registryAccessFrom,
  registryCredentials,
  registryRequestOptions,
  tagReferencesFrom,
} from '../access';
import { GUARD_SETTINGS, GuardSettings, guardSettingsFrom, waitForGuard } from '../guard';

export const ON_REFUSED = ['warn', 'fail'] as const;

/** The inputs of RegistryCleanup@1, as its task.json declares them. */
export const CLEANUP_SETTINGS = {
  images: list(),
  digests: list(),
  removeSignatures: bool(true),
  onRefused: pick(ON_REFUSED, 'warn'),
  ...REGISTRY_ACCESS_SETTINGS,
  gcGuard: bool(true),
  ...GUARD_SETTINGS,
  guardTimeoutMinutes: int(30, 1, 1440),
} as const satisfies SettingsTable;

export interface CleanupSettings extends RegistryAccess {
  images: ImageReference[];
  /** repo (`host/repository`) → the digests this run produced there. */
  digests: Map<string, Set<string>>;
  removeSignatures: boolean;
  onRefused: (typeof ON_REFUSED)[number];
  gcGuard: boolean;
  guard: GuardSettings;
}

/** The tags (by tag, never by digest) and the digests this run produced, checked before any request. */
export function cleanupSettingsFrom(v: SettingValues<typeof CLEANUP_SETTINGS>): CleanupSettings {
  const images = tagReferencesFrom(v.images, 'one repo:tag each; a cleanup removes tags');
  const digests = new Map<string, Set<string>>();
  for (const d of v.digests) {
    const ref = parseImageReference(d, 'digests');
    if (!ref.digest) throw new UserError(`Input 'digests': '${ref.original}' is not a repo@sha256:… reference.`);
    const set = digests.get(repoName(ref)) ?? new Set<string>();
    digests.set(repoName(ref), set.add(ref.digest));
  }
  const guard = guardSettingsFrom(v, { minutes: v.guardTimeoutMinutes, seconds: 0 }, 'fail');
  return { ...registryAccessFrom(v), images, digests, removeSignatures: v.removeSignatures, onRefused: v.onRefused, gcGuard: v.gcGuard, guard };
}

export type TagOutcome = 'removed' | 'kept' | 'refused' | 'absent' | 'failed';

export interface TagCleanup {
  tag: string;
  outcome: TagOutcome;
  digest?: string;
  /** Why it was kept, refused or failed, or what else went with it (one line). */
  detail: string;
}

interface Cleanup {
  s: CleanupSettings;
  log: Logger;
  signal: AbortSignal;
  creds: DockerConfigHandle;
  doClient?: DigitalOceanClient;
  /** The guard, once, before the first delete (a DigitalOcean registry is read-only during GC). */
  guarded?: Promise<void>;
  /**
   * Each repository's tags and their digests, read once per cleanup: every tag of the list in that
   * repository asks which other tags share its manifest, and the tags outside the list do not change
   * by this cleanup's own deletes.
   */
  repositoryTags: Map<string, Promise<Map<string, string>>>;
}

function resolveOptions(c: Cleanup, attemptSignal: AbortSignal): ResolveOptions {
  return registryRequestOptions(c.s, c.creds, { timeoutMs: SHORT_REGISTRY_BUDGET.attemptTimeoutSeconds * 1000, signal: attemptSignal, cancelSignal: c.signal });
}

/** A registry call within the cleanup's budget; the last error is what a final failure reads as. */
async function registryCall<T>(c: Cleanup, op: (o: ResolveOptions) => Promise<T>): Promise<T> {
  const { value } = await withRetry((_n, attemptSignal) => op(resolveOptions(c, attemptSignal)), {
    budget: SHORT_REGISTRY_BUDGET,
    signal: c.signal,
    classify: classifyRegistryFailure,
    giveUp: (failed: RetryError) => (failed.lastError instanceof Error ? failed.lastError : failed),
  });
  return value;
}

/** The digest the tag points at now, or undefined when the registry says it does not exist. */
async function currentDigest(c: Cleanup, ref: ImageReference): Promise<string | undefined> {
  try {
    return (await registryCall(c, (o) => resolveImage(ref, o))).digest;
  } catch (err) {
    if (err instanceof RegistryError && err.reason === 'manifest-unknown') return undefined;
    throw err;
  }
}

/**
 * cosign's tags for a digest: `.sig` and `.att` (cosign 2.x, and 3.x with the older formats), and the
 * bare `sha256-<hex>` tag cosign 3.x's bundles live under on a registry without the referrers API.
 */
function signatureTags(digest: string): string[] {
  const hex = digest.replace(/^sha256:/, '');
  return [`sha256-${hex}.sig`, `sha256-${hex}.att`, `sha256-${hex}`];
}

function guardOnce(c: Cleanup): Promise<void> {
  if (!c.s.gcGuard || !c.doClient) return Promise.resolve();
  c.guarded ??= (async () => {
    c.log.info('GC guard (before deleting): waiting until no garbage collection is active...');
    const timeline = c.s.guard.stages.length > 0 ? readTimelineClient(true, { log: c.log.info }) : undefined;
    const g = await waitForGuard({ client: c.doClient, timeline, log: c.log, currentStage: process.env['SYSTEM_STAGENAME'] }, c.s.guard, c.signal);
    c.log.info(`GC guard: ${g.message}`);
    if (g.timedOut) throw new UserError(`GC guard timed out (guardTimeoutMinutes): ${g.message}`);
  })();
  return c.guarded;
}

/** Through the DigitalOcean API: the tag, then (removeSignatures) cosign's tags for its digest. */
async function deleteViaDigitalOcean(c: Cleanup, ref: ImageReference, digest: string): Promise<string> {
  const [registry, ...rest] = ref.repository.split('/');
  const repository = rest.join('/');
  if (!repository) throw new UserError(`'${ref.original}' names no repository inside a DigitalOcean registry (registry/repository:tag).`);
  await guardOnce(c);
  await c.doClient!.deleteTag(registry, repository, ref.tag!, c.signal);
  const gone: string[] = [];
  if (c.s.removeSignatures) {
    for (const t of signatureTags(digest)) if ((await c.doClient!.deleteTag(registry, repository, t, c.signal)) === 'deleted') gone.push(t);
  }
  return gone.length ? `with ${gone.join(', ')}` : '';
}

/** Through the OCI distribution API: the manifest by digest, only when no tag outside the list points at it. */
async function deleteViaOci(c: Cleanup, ref: ImageReference, digest: string, ours: Set<string>): Promise<{ kept?: string; detail: string }> {
  const repo = repoName(ref);
  if (!c.repositoryTags.has(repo))
    c.repositoryTags.set(
      repo,
      registryCall(c, (o) => tagDigests(ref, o)),
    );
  const tags = await c.repositoryTags.get(repo)!;
  const sigs = new Set(signatureTags(digest));
  const others = [...tags].filter(([t, d]) => d === digest && !ours.has(t) && !sigs.has(t)).map(([t]) => t);
  if (others.length) return { kept: `tag(s) ${others.join(', ')} outside the list point at ${digest} too`, detail: '' };
  await registryCall(c, (o) => deleteManifestByDigest(ref, digest, o));
  const gone: string[] = [];
  if (c.s.removeSignatures) {
    for (const t of sigs) {
      const d = tags.get(t);
      if (d && (await registryCall(c, (o) => deleteManifestByDigest(ref, d, o))) === 'deleted') gone.push(t);
    }
  }
  return { detail: gone.length ? `with ${gone.join(', ')}` : '' };
}

/** One tag: exists now? still this run's? then removed, or kept, or refused, with the reason. */
async function cleanOne(c: Cleanup, ref: ImageReference, oursInRepo: Set<string>): Promise<TagCleanup> {
  const tag = `${repoName(ref)}:${ref.tag}`;
  let digest: string | undefined;
  try {
    digest = await currentDigest(c, ref);
    if (!digest) return { tag, outcome: 'absent', detail: 'not in the registry: nothing to remove' };
    const published = c.s.digests.get(repoName(ref));
    if (published && !published.has(digest)) {
      return { tag, outcome: 'kept', digest, detail: `it points at ${digest} now, not at a digest this run published (another run moved it)` };
    }
    if (c.doClient) return { tag, outcome: 'removed', digest, detail: await deleteViaDigitalOcean(c, ref, digest) };
    const r = await deleteViaOci(c, ref, digest, oursInRepo);
    return r.kept ? { tag, outcome: 'kept', digest, detail: r.kept } : { tag, outcome: 'removed', digest, detail: r.detail };
  } catch (err) {
    if (err instanceof CancelledError || c.signal.aborted) throw err;
    const refused = err instanceof DeleteRefusedError || (err instanceof RegistryError && err.reason === 'refused');
    return { tag, outcome: refused ? 'refused' : 'failed', digest, detail: errorMessage(err) };
  }
}

/** Every tag's outcome, in input order. */
export async function runCleanup(s: CleanupSettings, signal: AbortSignal, log: Logger): Promise<TagCleanup[]> {
  const registryName = s.guard.registry;
  const creds = await registryCredentials(s, {
    registryName,
    readWrite: true,
    expirySeconds: 900 + s.guard.timeoutSeconds,
    budget: SHORT_REGISTRY_BUDGET,
    log,
    signal,
  });
  try {
    describeCredentials(creds, log);
    const doClient = s.doConnection ? new DigitalOceanClient(s.doConnection, { log: log.debug }) : undefined;
    const c: Cleanup = { s, log, signal, creds, doClient, repositoryTags: new Map() };
    const limiter = new Limiter(4);
    const tagsByRepo = new Map<string, Set<string>>();
    for (const ref of s.images) tagsByRepo.set(repoName(ref), (tagsByRepo.get(repoName(ref)) ?? new Set<string>()).add(ref.tag!));
    const results = await Promise.all(s.images.map((ref) => limiter.run(() => cleanOne(c, ref, tagsByRepo.get(repoName(ref))!))));
    for (const r of results) log.info(`[${r.tag}] ${r.outcome}${r.digest ? ` (${r.digest})` : ''}${r.detail ? `: ${r.detail}` : ''}`);
    return results;
  } finally {
    creds.remove();
  }
}

/** What to do by hand about a refused delete. */
export function remediation(r: TagCleanup, viaDigitalOcean: boolean): string {
  const [repo, tag] = [r.tag.slice(0, r.tag.lastIndexOf(':')), r.tag.slice(r.tag.lastIndexOf(':') + 1)];
  return viaDigitalOcean
    ? `delete it by hand once the registry allows it: doctl registry repository delete-tag ${repo.split('/').slice(2).join('/')} ${tag}`
    : `the registry does not delete manifests (enable deletion, e.g. storage.delete.enabled for the distribution registry) or remove ${repo}@${r.digest ?? '<digest>'} by hand`;
}

/** What was removed, kept and refused, tag by tag. */
export function cleanupSummary(results: TagCleanup[]): string {
  const count = (o: TagOutcome) => results.filter((r) => r.outcome === o).length;
  return [
    `### RegistryCleanup@1: ${count('removed')} removed, ${count('kept')} kept, ${count('refused')} refused, ${count('absent')} not there, ${count('failed')} failed`,
    '',
    '| tag | outcome | digest | detail |',
    '|---|---|---|---|',
    ...results.map((r) => `| ${mdCell(r.tag)} | ${r.outcome} | ${r.digest ? `\`${r.digest}\`` : '-'} | ${mdCell(r.detail) || '-'} |`),
    '',
  ].join('\n');
}

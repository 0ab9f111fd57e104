// RegistryCleanup@1: after a failed run, remove what this run published and nothing else, on the
// registry where it published it. The phases:
//   1. check: each tag exists now and, where `digests` names its repository, points at a digest
//      this run produced (a tag another run moved is kept and reported);
//   2. route: the DigitalOcean API only for images on the DigitalOcean registry the connection
//      names; every other image through its own registry's OCI distribution API;
//   3. guard: before the first delete, the GC guard (a delete is a write, and a registry in GC is
//      read-only), through the one gate every writing task uses;
//   4. delete: each repository's tags read once (after the guard), each tag's digest read again
//      right before its delete (a tag that moved while the task waited is kept);
//   5. signatures: cosign's tags for a digest removed only when every tag pointing at it was this
//      run's and is gone.
import { Limiter } from '../../platform/concurrency';
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { unexpandedMacroInputs } from '../../platform/inputs';
import { Logger, OutputTable, mdCell } from '../../platform/output';
import { RetryError, withRetry } from '../../platform/retry';
import { SettingValues, SettingsTable, bool, int, list, pick } from '../../platform/settings';
import { TaskRun } from '../../platform/task';
import { DockerConfigHandle } from '../../services/credentials';
import { DeleteRefusedError, DigitalOceanClient } from '../../services/digitalocean';
import {
  ImageReference,
  RegistryCaller,
  RegistryError,
  RegistrySessionState,
  ResolveOptions,
  classifyRegistryFailure,
  deleteManifestByDigest,
  listTags,
  parseImageReference,
  repoName,
  repositorySession,
  resolveImage,
} from '../../services/oci';
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
import { GUARD_SETTINGS, GuardSettings, guardSettingsFrom } from '../guard';
import { GuardGate, guardWanted, writeGuard } from '../guard/gate';
import { CleanupRoute, DIGITALOCEAN_REGISTRY_HOST, routeFor } from './route';

export { CleanupRoute } from './route';

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
  /** Why the tags are removed without the digest check, when `digests` was an unexpanded macro. */
  digestsMissing?: string;
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
  const digestsMissing =
    digests.size === 0 && unexpandedMacroInputs().has('digests')
      ? "'digests' was an unexpanded macro: each tag in 'images' is removed if it exists, without checking that it still points at a digest this run published"
      : undefined;
  const guard = guardSettingsFrom(v, { minutes: v.guardTimeoutMinutes, seconds: 0 }, 'fail');
  return {
    ...registryAccessFrom(v),
    images,
    digests,
    digestsMissing,
    removeSignatures: v.removeSignatures,
    onRefused: v.onRefused,
    gcGuard: v.gcGuard,
    guard,
  };
}

export type TagOutcome = 'removed' | 'kept' | 'refused' | 'absent' | 'failed';

export interface TagCleanup {
  tag: string;
  outcome: TagOutcome;
  digest?: string;
  /** Which API the tag went through: 'DigitalOcean API (registry r)' or 'OCI API (host)'. */
  path: string;
  /** Why it was kept, refused or failed, or what else went with it (one line). */
  detail: string;
  /** What to do by hand, for a refusal. */
  remedy?: string;
}

/** What one tag went through before its delete (phases 1 and 2). */
interface Candidate {
  ref: ImageReference;
  route: CleanupRoute;
  /** The digest it pointed at when first checked. */
  digest: string;
  result?: TagCleanup;
}

interface Cleanup {
  s: CleanupSettings;
  log: Logger;
  signal: AbortSignal;
  creds: DockerConfigHandle;
  doClient?: DigitalOceanClient;
  gate: GuardGate;
  /** One registry session per repository: one token exchange for all its requests. */
  sessions: Map<string, RegistrySessionState>;
  /** Each repository's tags and their digests, read once, after the guard. */
  repositoryTags: Map<string, Promise<Map<string, string>>>;
  /** The tags of the list, by repository. */
  ours: Map<string, Set<string>>;
}

/** How many tags of one repository are resolved at once when its tag list is read. */
export const TAG_RESOLVE_PARALLELISM = 8;
/** How many of the list's tags are checked and deleted at once. */
export const CLEANUP_PARALLELISM = 4;
/** How often one delete goes back to the guard when the registry answers that it is read-only. */
export const MAX_REGUARDS = 3;

/** `host/repo:tag`, as the outputs, the log and the summary name a tag. */
function tagOf(ref: ImageReference): string {
  return `${repoName(ref)}:${ref.tag}`;
}

/** One registry request of this cleanup: its own small budget; the last error is what a final failure reads as. */
function callerFor(c: Cleanup, ref: ImageReference): RegistryCaller {
  const session = repositorySession(c.sessions, ref);
  return async <T>(op: (o: ResolveOptions) => Promise<T>): Promise<T> => {
    const { value } = await withRetry(
      (_n, attemptSignal) =>
        op({
          ...registryRequestOptions(c.s, c.creds, {
            timeoutMs: SHORT_REGISTRY_BUDGET.attemptTimeoutSeconds * 1000,
            signal: attemptSignal,
            cancelSignal: c.signal,
          }),
          session,
        }),
      {
        budget: SHORT_REGISTRY_BUDGET,
        signal: c.signal,
        classify: classifyRegistryFailure,
        giveUp: (failed: RetryError) => (failed.lastError instanceof Error ? failed.lastError : failed),
      },
    );
    return value;
  };
}

/** The digest the tag points at now, or undefined when the registry says it does not exist. */
async function currentDigest(c: Cleanup, ref: ImageReference): Promise<string | undefined> {
  try {
    return (await callerFor(c, ref)((o) => resolveImage(ref, o))).digest;
  } catch (err) {
    if (err instanceof RegistryError && err.reason === 'manifest-unknown') return undefined;
    throw err;
  }
}

/**
 * cosign's tags for a digest: `.sig` and `.att` (cosign 2.x, and 3.x with the older formats), and the
 * bare `sha256-<hex>` tag cosign 3.x's bundles live under on a registry without the referrers API.
 */
export function signatureTags(digest: string): string[] {
  const hex = digest.replace(/^sha256:/, '');
  return [`sha256-${hex}.sig`, `sha256-${hex}.att`, `sha256-${hex}`];
}

/** Every tag of the repository and the digest it points at, read once per cleanup. */
function repositoryTags(c: Cleanup, cand: Candidate): Promise<Map<string, string>> {
  const repo = repoName(cand.ref);
  let tags = c.repositoryTags.get(repo);
  if (!tags) {
    tags = cand.route.kind === 'digitalocean' ? doRepositoryTags(c, cand.route) : ociRepositoryTags(c, cand.ref);
    // Every candidate of the repository awaits it; the first one's failure is each one's failure.
    tags.catch(() => undefined);
    c.repositoryTags.set(repo, tags);
  }
  return tags;
}

async function doRepositoryTags(c: Cleanup, route: Extract<CleanupRoute, { kind: 'digitalocean' }>): Promise<Map<string, string>> {
  const listed = await c.doClient!.listTags(route.registry, route.repository, c.signal);
  return new Map(listed.map((t) => [t.tag, t.manifest_digest]));
}

/** The OCI tag list, every page, then each tag's digest, a few at a time, each with its own budget. */
async function ociRepositoryTags(c: Cleanup, ref: ImageReference): Promise<Map<string, string>> {
  const call = callerFor(c, ref);
  const names = await listTags(ref, call);
  const limiter = new Limiter(TAG_RESOLVE_PARALLELISM);
  const out = new Map<string, string>();
  await Promise.all(
    names.map((tag) =>
      limiter.run(async () => {
        const digest = await currentDigest(c, { ...ref, tag, digest: undefined, original: tagOf({ ...ref, tag }) });
        // A tag deleted between the list and its read points at nothing.
        if (digest) out.set(tag, digest);
      }),
    ),
  );
  c.log.debug(`${repoName(ref)}: ${names.length} tag(s) listed and resolved.`);
  return out;
}

/** Tags outside the list (and not cosign's own for this digest) that point at `digest`. */
function othersOn(c: Cleanup, ref: ImageReference, tags: Map<string, string>, digest: string): string[] {
  const ours = c.ours.get(repoName(ref))!;
  const sigs = new Set(signatureTags(digest));
  return [...tags].filter(([t, d]) => d === digest && !ours.has(t) && !sigs.has(t)).map(([t]) => t);
}

/** Phase 1 and 2: exists now? still this run's? which path? */
async function check(c: Cleanup, ref: ImageReference, route: CleanupRoute): Promise<Candidate | TagCleanup> {
  const tag = tagOf(ref);
  try {
    const digest = await currentDigest(c, ref);
    if (!digest) return { tag, outcome: 'absent', path: route.label, detail: 'not in the registry: nothing to remove' };
    const published = c.s.digests.get(repoName(ref));
    if (published && !published.has(digest)) {
      return {
        tag,
        outcome: 'kept',
        digest,
        path: route.label,
        detail: `it points at ${digest} now, not at a digest this run published (another run moved it)`,
      };
    }
    return { ref, route, digest };
  } catch (err) {
    return failure(c, tag, route, err, undefined);
  }
}

/** What a failed tag reads as: a refusal (with its remedy), or a failure. */
function failure(c: Cleanup, tag: string, route: CleanupRoute, err: unknown, digest: string | undefined): TagCleanup {
  if (err instanceof CancelledError || c.signal.aborted) throw err instanceof CancelledError ? err : new CancelledError();
  const refused = (err instanceof DeleteRefusedError && !err.readOnly) || (err instanceof RegistryError && err.reason === 'refused');
  if (!refused) return { tag, outcome: 'failed', digest, path: route.label, detail: errorMessage(err) };
  return { tag, outcome: 'refused', digest, path: route.label, detail: errorMessage(err), remedy: remediation(tag, digest, route, err) };
}

/** What to do by hand about a refused delete. */
function remediation(tag: string, digest: string | undefined, route: CleanupRoute, err: unknown): string {
  const name = tag.slice(tag.lastIndexOf(':') + 1);
  if (route.kind === 'digitalocean') {
    const byHand = `doctl registry repository delete-tag ${route.repository} ${name} in registry ${route.registry} (manifest ${digest ?? 'unknown'})`;
    if (err instanceof DeleteRefusedError && err.status === 403)
      return `give the token the registry:delete scope and run the cleanup again, or delete it by hand: ${byHand}`;
    return `delete it by hand once the registry allows it: ${byHand}`;
  }
  const repo = tag.slice(0, tag.lastIndexOf(':'));
  const status = err instanceof RegistryError ? err.status : undefined;
  const why =
    status === 403
      ? 'the credentials may not delete (grant delete rights, or'
      : 'the registry does not delete manifests here (enable deletion, e.g. storage.delete.enabled for the distribution registry, or';
  return `${why} remove ${repo}@${digest ?? '<digest>'} by hand)`;
}

/** A DigitalOcean delete that goes back to the guard while the registry answers that it is read-only. */
async function doDelete(c: Cleanup, route: Extract<CleanupRoute, { kind: 'digitalocean' }>, tag: string): Promise<void> {
  for (let reguards = 0; ; reguards++) {
    const startedAt = Date.now();
    try {
      await c.doClient!.deleteTag(route.registry, route.repository, tag, c.signal);
      return;
    } catch (err) {
      if (!(err instanceof DeleteRefusedError && err.readOnly)) throw err;
      if (!c.gate.guarded)
        throw new UserError(`${err.message}: the registry is read-only (a garbage collection is running or just ended); enable gcGuard, or order the stages`);
      if (reguards >= MAX_REGUARDS) throw new UserError(`${err.message}: still read-only after ${MAX_REGUARDS} guard waits`);
      c.log.info(`[${route.registry}/${route.repository}:${tag}] the registry is read-only: waiting for the GC guard again.`);
      await c.gate.reguard(startedAt, 'the registry refused a delete as read-only');
    }
  }
}

/** Phase 4: after the guard, the tag's digest read again, then its delete on its own path. */
async function remove(c: Cleanup, cand: Candidate): Promise<TagCleanup> {
  const { ref, route } = cand;
  const tag = tagOf(ref);
  try {
    const tags = await repositoryTags(c, cand);
    const now = await currentDigest(c, ref);
    if (!now) return { tag, outcome: 'absent', digest: cand.digest, path: route.label, detail: 'removed by someone else while the task waited' };
    if (now !== cand.digest) {
      return {
        tag,
        outcome: 'kept',
        digest: now,
        path: route.label,
        detail: `it moved while the task waited (${cand.digest} → ${now}): not this run's any more`,
      };
    }
    const others = othersOn(c, ref, tags, now);
    if (route.kind === 'oci') {
      // A delete by digest would take every tag on the manifest with it.
      if (others.length)
        return { tag, outcome: 'kept', digest: now, path: route.label, detail: `tag(s) ${others.join(', ')} outside the list point at ${now} too` };
      await callerFor(c, ref)((o) => deleteManifestByDigest(ref, now, o));
    } else await doDelete(c, route, ref.tag!);
    return { tag, outcome: 'removed', digest: now, path: route.label, detail: '' };
  } catch (err) {
    return failure(c, tag, route, err, cand.digest);
  }
}

/**
 * Phase 5: cosign's tags for each removed digest, only when no tag outside the list points at it
 * and every tag of the list on it was removed; otherwise the signatures stay, with the tag that
 * keeps them named on the removed tag.
 */
async function removeSignatures(c: Cleanup, cands: Candidate[]): Promise<void> {
  const byDigest = new Map<string, Candidate[]>();
  for (const cand of cands) {
    const key = `${repoName(cand.ref)}@${cand.result?.digest ?? cand.digest}`;
    byDigest.set(key, [...(byDigest.get(key) ?? []), cand]);
  }
  for (const group of byDigest.values()) {
    const removed = group.filter((g) => g.result?.outcome === 'removed');
    if (removed.length === 0) continue;
    const first = removed[0];
    const digest = first.result!.digest!;
    const tags = await repositoryTags(c, first);
    const keepers = [...othersOn(c, first.ref, tags, digest), ...group.filter((g) => g.result?.outcome !== 'removed').map((g) => g.ref.tag!)];
    if (keepers.length) {
      for (const g of removed) g.result!.detail = `signatures kept: ${keepers.join(', ')} still point(s) at ${digest}`;
      continue;
    }
    const gone: string[] = [];
    for (const sig of signatureTags(digest).filter((t) => tags.has(t))) {
      try {
        if (first.route.kind === 'oci') {
          const d = tags.get(sig)!;
          if ((await callerFor(c, first.ref)((o) => deleteManifestByDigest(first.ref, d, o))) === 'deleted') gone.push(sig);
        } else {
          await doDelete(c, first.route, sig);
          gone.push(sig);
        }
      } catch (err) {
        if (err instanceof CancelledError || c.signal.aborted) throw err;
        for (const g of removed) g.result!.detail = `signature ${sig} not removed: ${errorMessage(err)}`;
      }
    }
    if (gone.length) for (const g of removed) g.result!.detail ||= `with ${gone.join(', ')}`;
  }
}

/** Phases 1 to 5 for every tag; outcomes in input order. */
async function cleanAll(c: Cleanup, routes: CleanupRoute[]): Promise<TagCleanup[]> {
  const limiter = new Limiter(CLEANUP_PARALLELISM);
  const checked = await Promise.all(c.s.images.map((ref, i) => limiter.run(() => check(c, ref, routes[i]))));
  const cands = checked.filter((x): x is Candidate => 'ref' in x);
  if (cands.length) await c.gate.beforeFirstWrite();
  await Promise.all(cands.map((cand) => limiter.run(async () => void (cand.result = await remove(c, cand)))));
  if (c.s.removeSignatures) await removeSignatures(c, cands);
  return checked.map((x) => ('ref' in x ? x.result! : x));
}

/** Every tag's outcome, in input order. */
export async function runCleanup(s: CleanupSettings, signal: AbortSignal, log: Logger): Promise<TagCleanup[]> {
  if (s.digestsMissing) log.warn(`${s.digestsMissing}.`);
  const creds = await registryCredentials(s, {
    registryName: s.guard.registry,
    readWrite: true,
    expirySeconds: 900 + s.guard.timeoutSeconds,
    budget: SHORT_REGISTRY_BUDGET,
    log,
    signal,
  });
  try {
    describeCredentials(creds, log);
    const doClient = s.doConnection ? new DigitalOceanClient(s.doConnection, { log: log.debug }) : undefined;
    const guard = guardWanted(s.gcGuard, doClient, s.guard) ? writeGuard({ doClient, settings: s.guard, log, signal }) : undefined;
    const c: Cleanup = {
      s,
      log,
      signal,
      creds,
      doClient,
      gate: new GuardGate(guard, 'before deleting'),
      sessions: new Map(),
      repositoryTags: new Map(),
      ours: new Map(),
    };
    for (const ref of s.images) c.ours.set(repoName(ref), (c.ours.get(repoName(ref)) ?? new Set<string>()).add(ref.tag!));
    const doHosts = creds.source === 'digitalocean' ? [DIGITALOCEAN_REGISTRY_HOST, ...creds.hosts] : [DIGITALOCEAN_REGISTRY_HOST];
    const doRegistry = doClient && s.images.some((r) => doHosts.includes(r.registry)) ? await doClient.resolveRegistry(s.guard.registry, signal) : undefined;
    const routes = s.images.map((ref) => routeFor(ref, doClient ? doRegistry : undefined, doHosts));
    for (let i = 0; i < routes.length; i++) log.info(`[${tagOf(s.images[i])}] path: ${routes[i].label}${routes[i].why ? ` (${routes[i].why})` : ''}`);
    const results = await cleanAll(c, routes);
    for (const r of results) log.info(`[${r.tag}] ${r.outcome}${r.digest ? ` (${r.digest})` : ''}${r.detail ? `: ${r.detail}` : ''}`);
    return results;
  } finally {
    creds.remove();
  }
}

/** The task's result from the outcomes: outputs, the warnings to give, and how it ends. */
export interface CleanupVerdict {
  removedTags: string[];
  keptTags: string[];
  warnings: string[];
  message: string;
  /** The one-line failure, when the task fails. */
  failure?: string;
  withIssues: boolean;
}

export function cleanupVerdict(results: TagCleanup[], s: Pick<CleanupSettings, 'onRefused'>): CleanupVerdict {
  const of = (o: TagOutcome) => results.filter((r) => r.outcome === o);
  const warnings = [
    ...of('kept').map((r) => `Kept ${r.tag}: ${r.detail}.`),
    ...of('refused').map((r) => `The registry refused to delete ${r.tag} (${r.digest ?? 'digest unknown'}): ${r.detail}; ${r.remedy}.`),
  ];
  const message = `Cleanup: ${of('removed').length} removed, ${of('kept').length} kept, ${of('refused').length} refused, ${of('absent').length} not there.`;
  const failed = of('failed');
  let failure: string | undefined;
  if (failed.length) failure = `${message} Could not clean up ${failed.map((r) => `${r.tag} (${r.detail})`).join('; ')}`;
  else if (of('refused').length && s.onRefused === 'fail') failure = `${message} (onRefused: fail)`;
  return {
    removedTags: of('removed').map((r) => r.tag),
    keptTags: results.filter((r) => r.outcome !== 'removed' && r.outcome !== 'absent').map((r) => r.tag),
    warnings,
    message,
    failure,
    withIssues: of('refused').length > 0 || of('kept').length > 0,
  };
}

/** The outputs of RegistryCleanup@1. */
export const CLEANUP_OUTPUTS: OutputTable<CleanupVerdict> = {
  removedTags: { grammar: 'taggedReference', list: true, value: (v) => v.removedTags.join(',') },
  keptTags: { grammar: 'taggedReference', list: true, value: (v) => v.keptTags.join(',') },
};

/** RegistryCleanup@1: the cleanup, then its verdict (outputs, warnings, how it ends) and summary. */
export async function cleanupTask(s: CleanupSettings, signal: AbortSignal, log: Logger): Promise<TaskRun<CleanupVerdict>> {
  const results = await runCleanup(s, signal, log);
  const verdict = cleanupVerdict(results, s);
  const warnings = verdict.warnings.map((text) => ({ level: 'warn' as const, text }));
  return {
    outputs: CLEANUP_OUTPUTS,
    result: verdict,
    summary: { name: 'registry-cleanup', markdown: cleanupSummary(results) },
    closing: verdict.failure ? warnings : [...warnings, { level: 'info', text: verdict.message }],
    failure: verdict.failure ? new UserError(verdict.failure) : undefined,
    withIssues: verdict.withIssues,
    message: verdict.message,
  };
}

/** What was removed, kept and refused, tag by tag, with the path each took. */
export function cleanupSummary(results: TagCleanup[]): string {
  const count = (o: TagOutcome) => results.filter((r) => r.outcome === o).length;
  return [
    `### RegistryCleanup@1: ${count('removed')} removed, ${count('kept')} kept, ${count('refused')} refused, ${count('absent')} not there, ${count('failed')} failed`,
    '',
    '| tag | outcome | digest | path | detail |',
    '|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${mdCell(r.tag)} | ${r.outcome} | ${r.digest ? `\`${r.digest}\`` : '-'} | ${mdCell(r.path)} | ${mdCell([r.detail, r.remedy].filter(Boolean).join('; ')) || '-'} |`,
    ),
    '',
  ].join('\n');
}

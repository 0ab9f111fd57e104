// RegistryTagCheck@1: before anything is built or pushed, which of these tags already exist? Every
// tag is asked of the registry at once (a few at a time); only the registry's own "manifest unknown"
// or "name unknown" means a tag does not exist. Anything else (401/403, 5xx, a timeout, an HTML
// page) is retried within a small budget and then fails the check for that tag: never "absent".
import { Limiter } from '../../platform/concurrency';
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { Logger, OutputTable, mdCell } from '../../platform/output';
import { RetryError, withRetry } from '../../platform/retry';
import { SettingValues, SettingsTable, lines, pick } from '../../platform/settings';
import { ClosingLine, TaskRun } from '../../platform/task';
import { DockerConfigHandle } from '../../services/credentials';
import { ImageReference, RegistryError, classifyRegistryFailure, repoName, resolveImage } from '../../services/oci';
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

export const ON_EXISTING_TAG = ['fail', 'skip', 'warn'] as const;
export type OnExistingTag = (typeof ON_EXISTING_TAG)[number];

/** The inputs of RegistryTagCheck@1, as its task.json declares them. */
export const TAG_CHECK_SETTINGS = {
  images: lines(),
  onExistingTag: pick(ON_EXISTING_TAG, 'fail'),
  ...REGISTRY_ACCESS_SETTINGS,
} as const satisfies SettingsTable;

/** How many tags are asked at once. */
export const TAG_CHECK_PARALLELISM = 8;

export interface TagCheckSettings extends RegistryAccess {
  images: ImageReference[];
  onExistingTag: OnExistingTag;
}

/** The tags as `host/repo:tag` references (a digest reference has nothing to check), and the access rules. */
export function tagCheckSettingsFrom(v: SettingValues<typeof TAG_CHECK_SETTINGS>): TagCheckSettings {
  const images = tagReferencesFrom(v.images, 'one repo:tag a line; a digest always exists where it was pushed');
  return { ...registryAccessFrom(v), images, onExistingTag: v.onExistingTag };
}

export interface TagState {
  /** `host/repo:tag`, normalised. */
  tag: string;
  exists?: boolean;
  /** `host/repo@sha256:…` the tag points at, when it exists. */
  pinned?: string;
  /** Why it could not be checked (one line), when it could not. */
  error?: string;
}

/** The DigitalOcean registry the tags live in, when they are all in one (else the account's only one). */
function digitalOceanRegistryOf(images: ImageReference[]): string {
  const names = new Set(images.filter((r) => r.registry === 'registry.digitalocean.com').map((r) => r.repository.split('/')[0]));
  return names.size === 1 ? [...names][0] : '';
}

/** One tag: the registry's answer, or why there was none to believe. */
async function checkOne(s: TagCheckSettings, ref: ImageReference, creds: DockerConfigHandle, log: Logger, signal: AbortSignal): Promise<TagState> {
  const tag = `${repoName(ref)}:${ref.tag}`;
  try {
    const { value } = await withRetry(
      (_n, attemptSignal) =>
        resolveImage(
          ref,
          registryRequestOptions(s, creds, { timeoutMs: SHORT_REGISTRY_BUDGET.attemptTimeoutSeconds * 1000, signal: attemptSignal, cancelSignal: signal }),
        ),
      {
        budget: SHORT_REGISTRY_BUDGET,
        signal,
        classify: classifyRegistryFailure,
        onFailure: (r) => {
          if (r.nextWaitMs !== undefined)
            log.info(`[${tag}] ${r.failure.reason}: ${errorMessage(r.error)}; asking again in ${(r.nextWaitMs / 1000).toFixed(1)}s.`);
        },
      },
    );
    log.info(`[${tag}] exists: ${value.pinned}`);
    return { tag, exists: true, pinned: value.pinned };
  } catch (err) {
    if (err instanceof CancelledError || signal.aborted) throw err;
    const last = err instanceof RetryError ? err.lastError : err;
    if (last instanceof RegistryError && last.reason === 'manifest-unknown') {
      log.info(`[${tag}] does not exist yet.`);
      return { tag, exists: false };
    }
    const why = err instanceof RetryError ? `after ${err.attempts} attempt(s): ${errorMessage(last)}` : errorMessage(err);
    log.warn(`[${tag}] could not be checked ${why}`);
    return { tag, error: why };
  }
}

/** Every tag's state, in input order. */
export async function runTagCheck(s: TagCheckSettings, signal: AbortSignal, log: Logger): Promise<TagState[]> {
  const creds = await registryCredentials(s, {
    registryName: digitalOceanRegistryOf(s.images),
    readWrite: false,
    expirySeconds: 900,
    budget: SHORT_REGISTRY_BUDGET,
    log,
    signal,
  });
  try {
    describeCredentials(creds, log);
    const limiter = new Limiter(TAG_CHECK_PARALLELISM);
    return await Promise.all(s.images.map((ref) => limiter.run(() => checkOne(s, ref, creds, log, signal))));
  } finally {
    creds.remove();
  }
}

/** What RegistryTagCheck@1's outputs read: every tag's state, and whether later steps may be skipped. */
export interface TagCheckReport {
  states: TagState[];
  skip: boolean;
}

const tagsWhere = (r: TagCheckReport, exists: boolean, what: (t: TagState) => string | undefined) =>
  r.states
    .filter((t) => t.exists === exists)
    .map(what)
    .join(',');

/** The outputs of RegistryTagCheck@1. */
export const TAG_CHECK_OUTPUTS: OutputTable<TagCheckReport> = {
  existingTags: { grammar: 'taggedReference', list: true, value: (r) => tagsWhere(r, true, (t) => t.tag) },
  existingDigests: { grammar: 'pinnedReference', list: true, value: (r) => tagsWhere(r, true, (t) => t.pinned) },
  newTags: { grammar: 'taggedReference', list: true, value: (r) => tagsWhere(r, false, (t) => t.tag) },
  skip: { grammar: 'boolean', value: (r) => r.skip },
};

/** RegistryTagCheck@1: every tag checked, then the verdict onExistingTag asks for. */
export async function tagCheckTask(s: TagCheckSettings, signal: AbortSignal, log: Logger): Promise<TaskRun<TagCheckReport>> {
  const states = await runTagCheck(s, signal, log);
  const existing = states.filter((t) => t.exists);
  const unchecked = states.filter((t) => t.error);
  const allExist = existing.length === states.length;
  const reported = {
    outputs: TAG_CHECK_OUTPUTS,
    result: { states, skip: s.onExistingTag === 'skip' && allExist },
    summary: { name: 'registry-tag-check', markdown: tagCheckSummary(states, s.onExistingTag) },
  };
  const ending = (message: string, line: ClosingLine, withIssues = false) => ({ ...reported, closing: [line], message, withIssues });
  if (unchecked.length > 0) {
    const named = unchecked.map((t) => `${t.tag} (${t.error})`).join('; ');
    return {
      ...reported,
      failure: new UserError(`${unchecked.length} of ${states.length} tag(s) could not be checked, so whether they exist is unknown: ${named}`),
    };
  }
  if (existing.length === 0) {
    const message = `None of the ${states.length} tag(s) exists yet.`;
    return ending(message, { level: 'info', text: message });
  }
  const named = existing.map((t) => `${t.tag} (${t.pinned!.slice(t.pinned!.indexOf('@') + 1)})`).join(', ');
  const message = `${existing.length} of ${states.length} tag(s) already exist: ${named}`;
  const remedy = 'bump the version, or delete the tag on purpose';
  if (s.onExistingTag === 'fail') return { ...reported, failure: new UserError(`${message}; ${remedy} (onExistingTag: fail).`) };
  if (s.onExistingTag === 'skip') {
    const why = allExist ? 'skip is true: later steps can be skipped' : 'the others are new, so skip is false';
    return ending(message, { level: 'warn', text: `${message}; ${why} (onExistingTag: skip).` });
  }
  return ending(message, { level: 'warn', text: `${message}; ${remedy} (onExistingTag: warn).` }, true);
}

/** Every tag, whether it exists, and its digest. */
export function tagCheckSummary(states: TagState[], onExistingTag: OnExistingTag): string {
  const rows = states.map((t) => {
    const state = t.error ? 'could not be checked' : t.exists ? '**exists**' : 'new';
    const digest = t.pinned ? `\`${t.pinned.slice(t.pinned.indexOf('@') + 1)}\`` : t.error ? mdCell(t.error) : '-';
    return `| ${mdCell(t.tag)} | ${state} | ${digest} |`;
  });
  const existing = states.filter((t) => t.exists).length;
  return [
    `### RegistryTagCheck@1: ${existing} of ${states.length} tag(s) already exist (onExistingTag: ${onExistingTag})`,
    '',
    '| tag | state | digest |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

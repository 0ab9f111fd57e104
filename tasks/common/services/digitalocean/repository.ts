// The repository model: DigitalOcean's tag object, checked field by field where it enters, the
// grammars of repository names, tags and digests, and what a list or a delete can mean besides
// success (no such repository, already gone, refused).
import { UserError } from '../../platform/errors';
import { ShapeError, stringFieldProblem } from '../../platform/http';
import { RFC3339, quote } from '../../platform/output';
import { DoApiError } from './api';
import { REGISTRY_NAME_PATTERN } from './connection';

/** A repository's tag as GET .../repositories/{repository}/tags lists it. */
export interface RepositoryTag {
  registry_name: string;
  repository: string;
  tag: string;
  manifest_digest: string;
  /** Computed by DigitalOcean; absent while not yet known. */
  compressed_size_bytes?: number;
  size_bytes?: number;
  updated_at: string;
}

/** A tag (distribution-spec grammar). */
export const TAG_PATTERN = /^[\w][\w.-]{0,127}$/;
/** A manifest digest as DigitalOcean names one. */
export const MANIFEST_DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
/** A repository inside a registry (without the registry name): lower-case path components separated by '/'. */
export const REPOSITORY_NAME_PATTERN = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
/** Docker's limit on a whole name; the repository part alone is kept under it. */
const REPOSITORY_NAME_MAX = 255;

export function isRepositoryName(v: string): boolean {
  return v.length <= REPOSITORY_NAME_MAX && REPOSITORY_NAME_PATTERN.test(v);
}

/**
 * Thrown by listTags only for DigitalOcean's own, well-formed 404 error body on a registry confirmed
 * to exist: the repository does not exist (it was never pushed, or all of it was deleted). A 404
 * that is not DigitalOcean's JSON (a proxy's page) is an unexpected answer, never this.
 */
export class RepositoryNotFoundError extends UserError {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly doMessage: string,
    readonly requestId: string,
  ) {
    super(
      `DigitalOcean registry '${registry}' has no repository '${repository}' (404${doMessage ? `: ${doMessage}` : ''})${requestId ? ` [request id ${requestId}]` : ''}.`,
    );
    this.name = 'RepositoryNotFoundError';
  }
}

/**
 * What a delete did: 'deleted' (204), or 'already-gone' (DigitalOcean's own 404 error body on a
 * registry confirmed to exist: the tag, manifest or repository is not there, e.g. a retried delete
 * whose first answer was lost). Neither is an error.
 */
export type DeleteOutcome = 'deleted' | 'already-gone';

/**
 * DigitalOcean refused a delete with its own error body and a status another try will not change
 * by itself (400, 405, 409, 412, 422, 423 and other 4xx but 401/403/404/408/425/429): for example
 * a registry that is read-only while a garbage collection runs. Carries DigitalOcean's status, id
 * and message, so a caller can warn "refused" and go on instead of failing.
 */
export class DeleteRefusedError extends DoApiError {
  constructor(
    what: string,
    err: DoApiError,
    /** What was to be deleted: the tag or the digest. */
    readonly target: string,
    /** Why, when more is known than DigitalOcean's message says (a missing scope). */
    readonly why?: string,
  ) {
    super(`DigitalOcean refused to delete ${what}: ${err.message}${why ? ` (${why})` : ''}`, err.status, err.id, err.doMessage, err.requestId, err.wellFormed);
    this.name = 'DeleteRefusedError';
  }

  /**
   * Whether the refusal says the registry is read-only, as it is while a garbage collection runs and
   * for a short tail after it: a 409 Conflict or 423 Locked, or DigitalOcean's message saying so.
   * Such a delete waits for the guard and is tried again; it is never a refusal to report.
   */
  get readOnly(): boolean {
    return this.status === 409 || this.status === 423 || /read[- ]?only|garbage[- ]collection/i.test(this.doMessage);
  }
}

/** Statuses of a delete that are DigitalOcean's refusal (with its own body), not a failure to retry. */
export function isRefusalStatus(status: number): boolean {
  return status >= 400 && status < 500 && ![401, 403, 404, 408, 425, 429].includes(status);
}

/** Checks an argument before any request: a UserError naming it when out of grammar. */
export function requireGrammar(what: string, value: string, ok: (v: string) => boolean): string {
  if (typeof value !== 'string' || !ok(value)) throw new UserError(`The ${what} ${quote(String(value), 80)} is out of grammar.`);
  return value;
}

/** The tags list of a list answer, each entry checked (and of the registry and repository asked for). */
export function tagListOf(data: any, what: string, registry?: string, repository?: string): RepositoryTag[] {
  const items = data?.tags;
  if (!Array.isArray(items)) throw new ShapeError(`DigitalOcean API ${what}`, 'tags', data?.tags === undefined ? 'is missing' : 'is not a list');
  return items.map((it: unknown, i: number) => {
    const t = normalizeTag(it, what);
    if (registry !== undefined && t.registry_name !== registry) throw badTag(what, `tags[${i}].registry_name`, 'is not the registry asked for');
    if (repository !== undefined && t.repository !== repository) throw badTag(what, `tags[${i}].repository`, 'is not the repository asked for');
    return t;
  });
}

function badTag(what: string, field: string, why: string): ShapeError {
  return new ShapeError(`DigitalOcean API ${what} answered a tag`, field, why);
}

/**
 * A tag object from DigitalOcean, checked field by field where it enters: nothing out of grammar
 * reaches a log line, a summary or an output. A field that does not fit is a ShapeError naming the
 * field and why (never its value). The sizes are optional (DigitalOcean computes them later);
 * when present they must be whole numbers.
 */
export function normalizeTag(raw: unknown, what = 'repository tags'): RepositoryTag {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw badTag(what, 'tag', 'is not an object');
  const r = raw as Record<string, unknown>;
  const str = (field: string, max: number, ok: (v: string) => boolean, grammar: string): string => {
    const why = stringFieldProblem(r[field], max, ok, grammar);
    if (why !== undefined) throw badTag(what, field, why);
    return r[field] as string;
  };
  const size = (field: string): { [k: string]: number } => {
    const v = r[field];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw badTag(what, field, 'is not a whole number of at least 0');
    return { [field]: v };
  };
  return {
    registry_name: str('registry_name', 63, (v) => REGISTRY_NAME_PATTERN.test(v), "a registry name in DigitalOcean's grammar"),
    repository: str('repository', REPOSITORY_NAME_MAX, isRepositoryName, 'a repository name (lower-case path components)'),
    tag: str('tag', 128, (v) => TAG_PATTERN.test(v), 'a tag (letters, digits, `_`, `.` and `-`)'),
    manifest_digest: str('manifest_digest', 71, (v) => MANIFEST_DIGEST_PATTERN.test(v), 'a sha256 digest'),
    ...size('compressed_size_bytes'),
    ...size('size_bytes'),
    updated_at: str('updated_at', 40, (v) => RFC3339.test(v) && !Number.isNaN(Date.parse(v)), 'an RFC 3339 timestamp'),
  };
}

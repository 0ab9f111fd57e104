// The DigitalOcean registry API: the connection, the GC model, request pacing, the transport and the client.
export { DEFAULT_DO_API_URL, DoConnection, REGISTRY_NAME_PATTERN, doConnectionFrom, validateRegistryName } from './connection';
export {
  GC_TYPES,
  GarbageCollection,
  GcTypeInput,
  KNOWN_GC_STATUSES,
  TERMINAL_GC_STATUSES,
  describeGcStatus,
  gcOwnDurationSeconds,
  gcTypeInputName,
  isTerminalGcStatus,
  isUnknownGcStatus,
  median,
  normalizeGc,
  parseDoTime,
} from './gc';
export { DigitalOceanClientOptions, DoApiError, GcAlreadyActiveError } from './api';
export { DigitalOceanClient, MAX_LIST_PAGES, TAG_PAGE_SIZE } from './client';
export {
  DeleteOutcome,
  DeleteRefusedError,
  MANIFEST_DIGEST_PATTERN,
  REPOSITORY_NAME_PATTERN,
  RepositoryNotFoundError,
  RepositoryTag,
  TAG_PATTERN,
  isRepositoryName,
  normalizeTag,
} from './repository';
export { RatePacer } from './pacing';

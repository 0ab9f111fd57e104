// What every phase of one Cosign@1 run shares, and what it reports per image and per manifest.
import { Limiter } from '../../platform/concurrency';
import { Logger } from '../../platform/output';
import { ImageReference, RegistrySessionState, ResolvedImage } from '../../services/oci';
import { CosignCommand, FlagPlan } from '../../tools/cosign';
import { GuardGate } from '../guard/gate';
import type { KeyVaultSigning } from './keyvault';
import { RegistryPause } from './pause';
import { CosignTaskSettings } from './settings';

export type TargetStatus = 'pending' | 'skipped' | 'written' | 'verified' | 'failed';

/** One manifest cosign runs on: an input image, or a platform manifest of an index (recursive). */
export interface Target {
  /** Index of the input image this target belongs to. */
  image: number;
  pinned: string;
  label: string;
  platform?: string;
  skipped: boolean;
  attempts: number;
  status: TargetStatus;
  /** Why it failed (one line), when it did. */
  error?: string;
}

export interface ImageResult {
  input: string;
  pinned: string;
  digest: string;
  mediaType: string;
  platforms: number;
  /** Why the image could not be resolved (one line), when it could not. */
  error?: string;
}

export interface JobResult {
  images: ImageResult[];
  targets: Target[];
  attempts: number;
  gcWaitSeconds: number;
  durationSeconds: number;
  skipped: boolean;
  cosign: string;
  notes: string[];
  /** One line per image that failed, in input order; the job failed when there is any. */
  failures: string[];
  /** keyVaultKey: the key that signed (vault/name/version) and its public key's fingerprint. */
  keyVaultKey?: string;
}

/** What is known so far, for outputs on a failed run too. */
export interface JobProgress {
  attempts: number;
  gcWaitSeconds: number;
}

/** cosign's flags for the command, and for its verify command when a check or verification runs. */
export interface CommandPlans {
  plan: FlagPlan;
  verifyPlan?: FlagPlan;
}

/** One input image as it moves through the phases. */
export interface ImageWork {
  index: number;
  ref: ImageReference;
  result: ImageResult;
  resolved?: ResolvedImage;
  targets: Target[];
  /** Lines of this image only (cosign's own output among them), printed as one block when it ends. */
  block: string[];
  /** Prints a line that names this image. */
  log: Logger;
}

/**
 * What every phase of the run shares, settled before the first image and frozen: no phase changes
 * it. What changes as the run goes lives with its owner: each manifest's outcome on its Target, the
 * guard's waits in the gate, the caller's `progress` report.
 */
export interface CosignRun {
  readonly s: CosignTaskSettings;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** The caller's report of how far the run got (for outputs on a failed run). */
  readonly progress: JobProgress;
  readonly binary: string;
  readonly write: boolean;
  readonly verifyCommand: CosignCommand;
  /** At most `parallelism` resolutions, checks, writes and verifications at a time. */
  readonly limiter: Limiter;
  readonly gate: GuardGate;
  readonly registryPause: RegistryPause;
  /** One registry session per repository (a cache): its images' digests cost one token exchange, not one each. */
  readonly sessions: Map<string, RegistrySessionState>;
  /** A registry 401 goes back to the guard (a DigitalOcean connection is there to ask). */
  readonly reguardOn401: boolean;
  /** With the guard off and a DigitalOcean connection: whether a GC is active, asked once, for a 401's message. */
  readonly gcHint?: () => Promise<string>;
  /** keyVaultKey: the key read from Key Vault, its public key file, the private folder. */
  readonly keyVault?: KeyVaultSigning;
}

/** The most lines one image's block keeps: a chatty cosign cannot fill memory. */
export const MAX_BLOCK_LINES = 400;

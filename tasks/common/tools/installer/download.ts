// The installer's network: one deadline for the whole install, downloads hashed as they are
// written, small release files read whole, transient failures retried while the deadline allows.
import * as crypto from 'crypto';
import * as fs from 'fs';
import { CancelledError, UserError, errorMessage } from '../../platform/errors';
import { BodyKind, HttpStatusError, classifyHttpFailure, request } from '../../platform/http';
import { Logger, quote } from '../../platform/output';
import { linkedDeadline, withRetry } from '../../platform/retry';
import { NO_FOLLOW } from './proven-file';

/** Attempts and backoffs of one download; the time they may take is the install's network deadline. */
const RETRY_SHAPE = { maxAttempts: 3, initialBackoffSeconds: 2, maxBackoffSeconds: 10 };

/** A value from outside quoted in a one-line message (URLs and paths get more room than the default). */
export function q(value: string): string {
  return quote(value, 200);
}

export interface NetworkDeadline {
  seconds: number;
  /** Fires at the deadline or on the job's cancellation. */
  signal: AbortSignal;
  job: AbortSignal;
  remainingMs(): number;
  /** The deadline was reached (a request timer set to the remaining time may fire a moment before it). */
  outOfTime(): boolean;
  clear(): void;
}

export function networkDeadline(job: AbortSignal, seconds: number): NetworkDeadline {
  const endsAt = Date.now() + seconds * 1000;
  const d = linkedDeadline(job, seconds * 1000);
  return {
    seconds,
    signal: d.signal,
    job,
    remainingMs: () => Math.max(0, endsAt - Date.now()),
    outOfTime: () => d.expired() || Date.now() >= endsAt - 25,
    clear: d.clear,
  };
}

export interface Download {
  sha256: string;
  /** The file as it was when the last byte was written. */
  stat: fs.BigIntStats;
}

/** GETs a URL into a new private file, hashing the bytes as they are written; returns their sha256. */
export async function downloadHashed(url: string, dest: string, signal: AbortSignal, timeoutMs: number): Promise<Download> {
  const hash = crypto.createHash('sha256');
  fs.rmSync(dest, { force: true });
  const fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NO_FOLLOW, 0o600);
  try {
    const res = await request({
      method: 'GET',
      url,
      kind: 'binary',
      signal,
      timeoutMs,
      maxRedirects: 5,
      onChunk: (chunk) => {
        hash.update(chunk);
        fs.writeSync(fd, chunk);
      },
    });
    if (res.status !== 200) throw new HttpStatusError(`GET ${q(url)} answered HTTP ${res.status}`, res.status);
    return { sha256: hash.digest('hex'), stat: fs.fstatSync(fd, { bigint: true }) };
  } finally {
    fs.closeSync(fd);
  }
}

/** A small release file read whole (capped by `kind`); undefined when the mirror answers 404 (it does not publish it). */
export async function fetchSmall(url: string, kind: BodyKind, signal: AbortSignal, timeoutMs: number): Promise<Buffer | undefined> {
  const res = await request({ method: 'GET', url, kind, signal, timeoutMs, maxRedirects: 5 });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new HttpStatusError(`GET ${q(url)} answered HTTP ${res.status}`, res.status);
  return res.body;
}

/** Retries transient failures while the install's network deadline allows; every request gets the time left. */
export async function downloadRetry<T>(
  what: string,
  op: (signal: AbortSignal, timeoutMs: number) => Promise<T>,
  net: NetworkDeadline,
  log: Logger,
): Promise<T> {
  let last = '';
  const failure = (detail: string) =>
    net.outOfTime()
      ? new UserError(
          `Could not download ${q(what)} within timeoutSeconds (${net.seconds}s)${detail ? `: ${q(detail)}` : ''}; check the mirror or raise timeoutSeconds.`,
        )
      : new UserError(`Could not download ${q(what)}: ${q(detail)}`);
  try {
    const remaining = net.remainingMs();
    if (remaining <= 0) throw new CancelledError('deadline');
    const r = await withRetry((_attempt, s) => op(s, Math.max(1, net.remainingMs())), {
      budget: { ...RETRY_SHAPE, attemptTimeoutSeconds: net.seconds, totalTimeoutSeconds: remaining / 1000 },
      classify: classifyHttpFailure,
      signal: net.signal,
      onFailure: (r) => {
        last = errorMessage(r.error);
        log.info(
          `Download of ${q(what)} failed (attempt ${r.attempt}/${r.maxAttempts}, ${r.failure.reason}): ${q(last)}${r.nextWaitMs !== undefined ? `; retrying in ${(r.nextWaitMs / 1000).toFixed(1)}s` : ''}`,
        );
      },
      giveUp: (failed) => failure(errorMessage(failed.lastError)),
    });
    return r.value;
  } catch (err) {
    if (net.job.aborted) throw new CancelledError();
    // The install's own deadline ended a request in flight (or left no time for one).
    if (err instanceof CancelledError && net.outOfTime()) throw failure(last);
    throw err;
  }
}

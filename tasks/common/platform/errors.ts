/**
 * A failure the user can fix (bad input, wrong checksum, missing scope).
 * Reported as one line with no stack trace.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Thrown out of waits and child processes when the agent cancels the job. */
export class CancelledError extends Error {
  constructor(message = 'the job was cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

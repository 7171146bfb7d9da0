// A UserError is the user's to fix (bad input, bad option, missing file): the CLI prints its
// message as one line and exits 1. Anything else is a bug and keeps its stack.
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** Thrown when a job is cancelled (Ctrl-C, the app's cancel button). */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor(message = 'cancelled') {
    super(message);
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

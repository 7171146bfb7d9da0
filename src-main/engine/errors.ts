// A UserError is the user's to fix (bad input, bad option, missing file): the CLI prints its
// message as one line and exits 1. Anything else is a bug and keeps its stack.
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(message: string, options?: ErrorOptions) {
    // Messages quote file names and values from the user's files: keep them one line whatever they hold.
    super(escapeControl(message), options);
  }
}

/** Control characters written visibly (\n, \x1b), so a message stays one printable line. */
export function escapeControl(message: string): string {
  // eslint-disable-next-line no-control-regex
  return message.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? ' ' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
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

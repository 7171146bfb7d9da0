import { expect } from 'vitest';
import { UserError } from '../engine/errors';

/** Awaits `p` and asserts it rejected with a UserError whose message matches. */
export async function expectUserError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'expected a UserError').toBeInstanceOf(UserError);
  expect((e as Error).message).toMatch(pattern);
}

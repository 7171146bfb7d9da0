import { UserError } from '../errors';
import { loftqInit } from './loftq';
import { qloraInit } from './qlora';
import { INIT_METHODS, type Initializer, type InitMethod } from './types';

export * from './types';

const INITIALIZERS: Record<InitMethod, Initializer> = { qlora: qloraInit, loftq: loftqInit };

export function initializerFor(method: string): Initializer {
  if (!(INIT_METHODS as readonly string[]).includes(method)) {
    throw new UserError(`unknown method '${method}': choose one of ${INIT_METHODS.join(', ')}`);
  }
  return INITIALIZERS[method as InitMethod];
}

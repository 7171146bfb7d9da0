// The renderer's single StudioApi instance (set once at start-up, or a fake in tests).
import type { ClientApi } from '../transport/types';

let current: ClientApi | null = null;

export function setApi(api: ClientApi | null): void {
  current = api;
}

export function api(): ClientApi {
  if (!current) throw new Error('the API is not initialised');
  return current;
}

// Types of scripts/addon-api.mjs for the TypeScript that imports it (its test).
export interface AddonField {
  name: string;
  type: string;
  optional: boolean;
  default?: string | null;
}
export interface AddonParam {
  name: string;
  kind: 'scalar' | 'options';
  type: string;
  fields?: AddonField[];
}
export interface AddonFunction {
  name: string;
  params: AddonParam[];
}
export const ADDON_SOURCE: string;
export function parseAddonApi(source: string): AddonFunction[];
export function abiHash(table: AddonFunction[]): number;
export function cppHeader(table: AddonFunction[]): string;
export function stampState(source?: string): { stamped: number; hash: number };

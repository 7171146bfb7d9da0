// The packaged app's hardening lives in electron-builder.yml: its fuses and what it unpacks.
// (Building installers needs Electron's binary, which this CI cannot download; the config is
// checked against electron-builder's own schema here.)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): unknown };
const config = yaml.load(readFileSync('electron-builder.yml', 'utf8')) as Record<string, unknown>;

describe('electron-builder.yml', () => {
  it('flips the fuses: no run-as-node, no NODE_OPTIONS or inspect flags, asar only and checked', () => {
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
  });

  it('uses only options electron-builder knows, and packs the CUDA addon unpacked', () => {
    const scheme = require('app-builder-lib/scheme.json') as { properties?: Record<string, unknown>; definitions: Record<string, { properties?: Record<string, unknown> }> };
    const known = scheme.properties ?? scheme.definitions.Configuration.properties ?? {};
    for (const key of Object.keys(config)) expect(Object.keys(known), key).toContain(key);
    const fuses = Object.keys(scheme.definitions.FuseOptionsV1.properties ?? {});
    for (const key of Object.keys(config.electronFuses as object)) expect(fuses, key).toContain(key);
    expect(config.files).toContain('native/build/*.node');
    expect(config.asarUnpack).toContain('**/*.node');
  });
});

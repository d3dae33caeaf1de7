// Finds and loads one of the project's N-API addons (built from native/ by node-gyp at
// `npm install`): it sits under the package root, ../../ from src/<folder>, ../../../ from dist/src/<folder>.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NtlsError } from '../errors/ntls-error.js';

export class NativeAddonMissingError extends NtlsError {
  declare readonly code: 'NTLS_ERR_NATIVE_ADDON';
  constructor(readonly file: string) {
    super('NTLS_ERR_NATIVE_ADDON', `${file} is not built`, { hint: 'run `npm install` (it builds native/ with node-gyp)' });
  }
}

const loaded = new Map<string, unknown>();

/** `file` relative to the package root, e.g. native/daemon/build/Release/file_lock.node. */
export function loadNativeAddon<T>(file: string): T {
  const known = loaded.get(file);
  if (known) return known as T;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    const candidate = join(dir, file);
    if (existsSync(candidate)) {
      const addon = createRequire(import.meta.url)(candidate) as T;
      loaded.set(file, addon);
      return addon;
    }
    dir = dirname(dir);
  }
  throw new NativeAddonMissingError(file);
}

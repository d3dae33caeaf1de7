// ntls's own PKCS#11 module, libntls-pkcs11.so (native/pkcs11-module, built at `npm install`):
// where it lies, and the names of what configures it (docs/client.md, "The PKCS#11 module").
// The module itself (C) reads them; these constants are the same words for the CLI and docs.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientError } from './errors.js';

export const PKCS11_MODULE = join('native', 'pkcs11-module', 'build', 'Release', 'libntls-pkcs11.so');
/** The module's own settings (`relay:`, `server:`, `timeout:`), in the ntls-client config folder. */
export const PKCS11_MODULE_CONFIG_FILE = 'pkcs11-module.conf';
/** Overrides `relay:`: `unix:path=SOCKET` or `|command`. */
export const PKCS11_RELAY_ENV = 'NTLS_PKCS11_RELAY';

/** The package root: two folders up from src/client, three from dist/src/client. */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return dir;
    dir = dirname(dir);
  }
  return null;
}

/** The absolute path of libntls-pkcs11.so; NTLS_ERR_FILE when it was not built. */
export function pkcs11ModulePath(): string {
  const root = packageRoot();
  const path = root === null ? PKCS11_MODULE : join(root, PKCS11_MODULE);
  if (root === null || !existsSync(path)) {
    throw new ClientError('NTLS_ERR_FILE', `the PKCS#11 module ${path} is not built`,
      'run `npm rebuild ntls` (or `npm install` in the ntls folder): it builds native/pkcs11-module with node-gyp and a C compiler');
  }
  return path;
}

// The version of ntls, from its package.json (both CLIs' --version, ntls_build_info).
import { readFileSync } from 'node:fs';

function packageVersion(): string {
  // src/version.ts and dist/src/version.js both sit two folders below the package root... or one.
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const json = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (json.name === 'ntls' && json.version) return json.version;
    } catch {
      // Not there: the other layout.
    }
  }
  return '0.0.0';
}

export const NTLS_VERSION = packageVersion();

// The home holds the HSM store, the server key, the audit key, the registered clients and the
// configuration. ntls makes it 0750 (everything to its owner, reading to its group) and its
// secret folders 0700; a home the operator made (`mkdir` gives 0755, or 0775 under umask 002)
// is brought to the same at start. A home every user may write is refused: anyone on the host
// could already have replaced what it holds, and changing its mode would not undo that.
import { chmodSync, existsSync, statSync } from 'node:fs';
import { NtlsError } from '../errors/ntls-error.js';

/** What a home may allow at most. */
const HOME_MODE = 0o750;

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

export class HomeWritableError extends NtlsError {
  declare readonly code: 'NTLS_ERR_HOME_PERMISSIONS';
  constructor(readonly home: string, readonly mode: number) {
    super('NTLS_ERR_HOME_PERMISSIONS',
      `the home ${home} is writable by every user (mode ${octal(mode)}), so its configuration, registered clients and HSM store cannot be trusted`,
      { hint: `check that what it holds is yours, then \`chmod 750 ${home}\` and start again` });
  }
}

/** What the extra bits of `mode` let others do, in words. */
function excess(mode: number): string {
  const parts: string[] = [];
  if (mode & 0o020) parts.push('its group could write in it');
  if (mode & 0o004) parts.push('other users could list and read it');
  else if (mode & 0o001) parts.push('other users could reach into it');
  return parts.join(', ');
}

/**
 * Refuses (HomeWritableError) a home every user may write; takes from any other what 0750
 * does not allow (special bits such as setgid are kept). Returns the line to tell the operator,
 * or null when the home was already as tight.
 */
export function secureHome(home: string): string | null {
  const mode = statSync(home).mode & 0o7777;
  if (mode & 0o002) throw new HomeWritableError(home, mode);
  if ((mode & 0o777 & ~HOME_MODE) === 0) return null;
  const tightened = (mode & 0o7000) | (mode & HOME_MODE);
  try {
    chmodSync(home, tightened);
  } catch (error) {
    // Not its owner: what the home holds that is secret is in 0700 folders of its own.
    return `the home ${home} is mode ${octal(mode)} (${excess(mode)}) and cannot be changed by this user `
      + `(${(error as NodeJS.ErrnoException).code ?? 'error'}); its owner can run \`chmod ${octal(tightened)} ${home}\``;
  }
  return `the home ${home} was mode ${octal(mode)} (${excess(mode)}); now ${octal(tightened)}`;
}

/** What a secret's mode lets others do beyond its owner, in words. */
function exposure(mode: number): string {
  const parts: string[] = [];
  if (mode & 0o070) parts.push(mode & 0o020 ? 'its group could write it' : 'its group could read it');
  if (mode & 0o007) parts.push(mode & 0o002 ? 'other users could write it' : 'other users could read it');
  return parts.join(', ');
}

/**
 * Secret folders (0700) and files (0600) that exist are brought to owner-only: a store, key or
 * audit folder restored from a copy, or made by an older version, keeps the mode it came with
 * otherwise. Returns one line per change, or per secret this user cannot change.
 */
export function secureSecrets(secrets: { folders: readonly string[]; files: readonly string[] }): string[] {
  const lines: string[] = [];
  const tighten = (path: string) => {
    if (!existsSync(path)) return;
    const mode = statSync(path).mode & 0o7777;
    if ((mode & 0o077) === 0) return;
    const tightened = mode & ~0o077;
    try {
      chmodSync(path, tightened);
      lines.push(`${path} was mode ${octal(mode)} (${exposure(mode)}); now ${octal(tightened)}`);
    } catch (error) {
      lines.push(`${path} is mode ${octal(mode)} (${exposure(mode)}) and cannot be changed by this user `
        + `(${(error as NodeJS.ErrnoException).code ?? 'error'}); its owner can run \`chmod ${octal(tightened)} ${path}\``);
    }
  };
  for (const folder of secrets.folders) tighten(folder);
  for (const file of secrets.files) tighten(file);
  return lines;
}

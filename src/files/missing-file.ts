import { statSync } from 'node:fs';

/**
 * True only when nothing is at `path`. existsSync says false as well for a file in a folder this
 * user cannot enter (EACCES): "does not exist" would then send the operator looking for a file
 * that is there; reading it says what is wrong (permission denied).
 */
export function missingFile(path: string): boolean {
  try {
    statSync(path);
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}

// The token image format: made atomically, read back, opened as an HSM with the token's PINs;
// damaged, foreign and newer files refused with their code and left exactly as they were.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { copyFileSync, existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CKU, CKR } from '../../src/pkcs11/constants.js';
import { storePath } from '../../src/store/hsm-store.js';
import { TokenError } from '../../src/tokens/errors.js';
import { IMAGE_FORMAT_VERSION, openImageHsm, readImage } from '../../src/tokens/image.js';
import { SoftwareUnderTest } from '../support/tokens.js';
import { RW, openHsm, removeHome, rv, tempHome } from '../hsm/support.js';
import { TOKEN_PIN, TOKEN_SO_PIN, devices, digest, imageOptions, join, makeImage } from './support.js';

let home: string;
let folder: string;

beforeEach(async () => {
  home = tempHome();
  folder = devices(home);
});
afterEach(() => removeHome(home));

function refusal(path: string): TokenError {
  try {
    readImage(path);
  } catch (error) {
    if (error instanceof TokenError) return error;
    throw error;
  }
  throw new Error(`${path} was not refused`);
}

/** Refused with `code`, and not one byte of the file changed (nor a journal left beside it). */
function expectRefused(path: string, code: string): void {
  const before = digest(path);
  expect(refusal(path).code).toBe(code);
  expect(digest(path)).toBe(before);
  expect(readdirSync(folder).filter((n) => n.endsWith('-journal') || n.endsWith('-wal'))).toEqual([]);
}

describe('a new image', () => {
  it('holds one initialised token with its label, serial, format version and no backup', async () => {
    const path = join(folder, 'Backup1.ntlstoken');
    const made = await makeImage(path, 'Backup1', '123456');
    expect(made).toMatchObject({ label: 'Backup1', serial: '123456', formatVersion: IMAGE_FORMAT_VERSION, objects: 0, hasUserPin: true, backup: null });
    expect(readImage(path)).toEqual(made);
    // The file alone is the token: no -wal or -journal beside it, nothing of the build left.
    expect(readdirSync(folder)).toEqual(['Backup1.ntlstoken']);
  });

  it('opens as an HSM whose single token takes the user PIN and the SO PIN, and no other', async () => {
    const path = join(folder, 't.ntlstoken');
    await makeImage(path, 'PKI', '42');
    const { hsm: device, info } = await openImageHsm(path, imageOptions);
    const hsm = new SoftwareUnderTest(device);
    try {
      expect(info.serial).toBe('42');
      expect(hsm.getSlotList()).toEqual([0]);
      expect(hsm.getTokenInfo(0)).toMatchObject({ label: 'PKI', serialNumber: '42' });
      const app = hsm.application('t');
      const s = await app.C_OpenSession(0, RW);
      expect(await rv(() => app.C_Login(s, CKU.USER, 'wrong-pin-1'))).toBe(CKR.PIN_INCORRECT);
      await app.C_Login(s, CKU.USER, TOKEN_PIN);
      await app.C_Logout(s);
      await app.C_Login(s, CKU.SO, TOKEN_SO_PIN);
    } finally {
      hsm.close();
    }
  });

  it('never replaces an existing file, and refuses bad arguments before writing anything', async () => {
    const path = join(folder, 'x.ntlstoken');
    writeFileSync(path, 'keep me');
    await expect(makeImage(path, 'x')).rejects.toMatchObject({ code: 'NTLS_ERR_IMAGE_EXISTS' });
    expect(readFileSync(path, 'utf8')).toBe('keep me');
    await expect(makeImage(join(folder, 'y.ntlstoken'), 'y'.repeat(33))).rejects.toMatchObject({ code: 'NTLS_ERR_IMAGE_ARGUMENT' });
    await expect(makeImage(join(folder, 'y.ntlstoken'), 'y', '12ab')).rejects.toMatchObject({ code: 'NTLS_ERR_IMAGE_ARGUMENT' });
    expect(readdirSync(folder)).toEqual(['x.ntlstoken']);
  });

  it('opening a missing image creates nothing', async () => {
    const path = join(folder, 'gone.ntlstoken');
    await expect(openImageHsm(path, imageOptions)).rejects.toBeInstanceOf(TokenError);
    expect(existsSync(path)).toBe(false);
  });
});

describe('damaged images', () => {
  it('a file that is not SQLite', async () => {
    const path = join(folder, 'junk.ntlstoken');
    writeFileSync(path, randomBytes(8192));
    expectRefused(path, 'NTLS_ERR_IMAGE_DAMAGED');
  });

  it('an empty file and a file cut short', async () => {
    const empty = join(folder, 'empty.ntlstoken');
    writeFileSync(empty, '');
    expectRefused(empty, 'NTLS_ERR_IMAGE_DAMAGED');
    const path = join(folder, 'cut.ntlstoken');
    await makeImage(path, 'cut');
    truncateSync(path, 4096 + 100);
    expectRefused(path, 'NTLS_ERR_IMAGE_DAMAGED');
  });

  it('pages overwritten inside', async () => {
    const path = join(folder, 'scribbled.ntlstoken');
    await makeImage(path, 'scribbled');
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    randomBytes(bytes.length - pageSize).copy(bytes, pageSize);
    writeFileSync(path, bytes);
    expectRefused(path, 'NTLS_ERR_IMAGE_DAMAGED');
  });
});

describe('foreign images', () => {
  it('an SQLite database of another program', async () => {
    const path = join(folder, 'other.ntlstoken');
    const db = new Database(path);
    db.exec('CREATE TABLE t (x INTEGER)');
    db.close();
    expectRefused(path, 'NTLS_ERR_IMAGE_FOREIGN');
  });

  it('an ntls HSM store that is not a token image (a copied hsm.db)', async () => {
    const hsm = await openHsm(home);
    hsm.close();
    const path = join(folder, 'hsm.ntlstoken');
    copyFileSync(storePath(home), path);
    expectRefused(path, 'NTLS_ERR_IMAGE_FOREIGN');
  });

  it('an image of another kind', async () => {
    const path = join(folder, 'kind.ntlstoken');
    await makeImage(path, 'kind');
    const db = new Database(path);
    db.prepare("UPDATE token_image SET value = 'something-else' WHERE key = 'kind'").run();
    db.close();
    expectRefused(path, 'NTLS_ERR_IMAGE_FOREIGN');
  });
});

describe('versions', () => {
  it('an image of a newer format is refused as such, untouched', async () => {
    const path = join(folder, 'newer.ntlstoken');
    await makeImage(path, 'newer');
    const db = new Database(path);
    db.prepare("UPDATE token_image SET value = ? WHERE key = 'format_version'").run(String(IMAGE_FORMAT_VERSION + 1));
    db.close();
    expectRefused(path, 'NTLS_ERR_IMAGE_VERSION');
    await expect(openImageHsm(path, imageOptions)).rejects.toMatchObject({ code: 'NTLS_ERR_IMAGE_VERSION' });
  });
});

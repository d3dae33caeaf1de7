// The real openssl command line, as an independent implementation to check against, plus the
// DER ECDSA-Sig-Value codec openssl wants (written here, apart from the code under test).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { KeyMaterial } from '../../../src/hsm/mechanisms/contract.js';
import { CKO } from '../../../src/pkcs11/constants.js';

export const OPENSSL = '/usr/bin/openssl';

export function openssl(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(OPENSSL, args, { encoding: 'buffer', maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

/** Runs openssl and fails the test with its stderr if it exits non-zero. */
export async function opensslOk(args: string[]): Promise<Buffer> {
  const result = await openssl(args);
  if (result.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export class Scratch {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Scratch> {
    return new Scratch(await mkdtemp(join(tmpdir(), 'ntls-mech-')));
  }

  async write(name: string, data: Buffer | string): Promise<string> {
    const path = join(this.dir, name);
    await writeFile(path, data);
    return path;
  }

  read(name: string): Promise<Buffer> {
    return readFile(join(this.dir, name));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** The key as PEM on disk, for -inkey. */
  writeKey(name: string, key: KeyMaterial): Promise<string> {
    const pem = key.objectClass === CKO.PRIVATE_KEY
      ? createPrivateKey({ key: key.der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' })
      : createPublicKey({ key: key.der, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' });
    return this.write(name, pem);
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

function derInteger(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  let body = value.subarray(start);
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

function derLength(length: number): Buffer {
  return length < 0x80 ? Buffer.from([length]) : Buffer.from([0x81, length]);
}

/** PKCS#11 r||s to DER SEQUENCE { r INTEGER, s INTEGER }. */
export function rawToDerSignature(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** DER ECDSA-Sig-Value to r||s, each `width` bytes. */
export function derToRawSignature(der: Buffer, width: number): Buffer {
  let offset = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
  const parts: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    const length = der[offset + 1]!;
    let value = der.subarray(offset + 2, offset + 2 + length);
    while (value.length > width && value[0] === 0) value = value.subarray(1);
    parts.push(Buffer.concat([Buffer.alloc(width - value.length), value]));
    offset += 2 + length;
  }
  return Buffer.concat(parts);
}

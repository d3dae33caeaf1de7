// Input held across C_SignUpdate/C_VerifyUpdate calls. node:crypto's asynchronous one-shot
// sign needs the whole message, so small messages are kept; past RETAIN_LIMIT the input is
// hashed as it arrives and the mechanism signs the digest instead (see rsa.ts, ec.ts).
// Kept input is copied: the caller may reuse its buffer once update() has returned.

import { createHash, type Hash } from 'node:crypto';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { HashAlgorithm } from './digest.js';

/** Mechanisms that need the whole message (EdDSA, raw RSA, key wrap) refuse more than this. */
export const MESSAGE_LIMIT = 64 * 1024 * 1024;
/** Hash-then-sign mechanisms keep up to this much for the one-shot call, then stream a hash. */
export const RETAIN_LIMIT = 1024 * 1024;

export class WholeMessage {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit = MESSAGE_LIMIT) {}

  add(data: Buffer): void {
    this.size += data.length;
    if (this.size > this.limit) throw new Pkcs11Error(CKR.DATA_LEN_RANGE);
    this.chunks.push(Buffer.from(data));
  }

  get length(): number {
    return this.size;
  }

  take(): Buffer {
    const whole = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    return whole;
  }
}

export class HashedMessage {
  private chunks: Buffer[] | null = [];
  private size = 0;
  private state: Hash | null = null;

  constructor(readonly hash: HashAlgorithm, private readonly retainLimit = RETAIN_LIMIT) {}

  add(data: Buffer): void {
    if (this.chunks) {
      this.size += data.length;
      if (this.size <= this.retainLimit) {
        this.chunks.push(Buffer.from(data));
        return;
      }
      this.state = createHash(this.hash.name);
      for (const chunk of this.chunks) this.state.update(chunk);
      this.chunks = null;
    }
    this.state!.update(data);
  }

  /** The whole message while it was small enough to keep, else null. */
  message(): Buffer | null {
    return this.chunks ? Buffer.concat(this.chunks, this.size) : null;
  }

  digest(): Buffer {
    if (this.state) return this.state.digest();
    return createHash(this.hash.name).update(this.message()!).digest();
  }
}

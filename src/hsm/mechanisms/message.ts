// Input held across C_SignUpdate/C_VerifyUpdate calls. node:crypto's asynchronous one-shot
// sign needs the whole message, so small messages are kept; past RETAIN_LIMIT the input is
// hashed as it arrives and the mechanism signs the digest instead (see rsa.ts, ec.ts).
// Kept input is copied: the caller may reuse its buffer once update() has returned.
//
// Every byte kept is counted in one budget for the process (`operationMemory`): one message
// may be 64 MiB, and sessions have no fixed number, so without it a client could fill the
// daemon's memory with open operations; and each client has a quarter of it (the call's owner,
// src/token/device.ts), so
// that one cannot leave the others none. Past the budget, update() is CKR_DEVICE_MEMORY. A
// message gives its bytes back through release(), which its operation's dispose() calls when
// the operation leaves its session, finished or not.

import { createHash, type Hash } from 'node:crypto';
import { callOwner } from '../../token/device.js';
import { operationMemory } from '../../token/operation-memory.js';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { HashAlgorithm } from './digest.js';

export { operationMemory } from '../../token/operation-memory.js';

/** Mechanisms that need the whole message (EdDSA, raw RSA, key wrap) refuse more than this. */
export const MESSAGE_LIMIT = 64 * 1024 * 1024;
/** Hash-then-sign mechanisms keep up to this much for the one-shot call, then stream a hash. */
export const RETAIN_LIMIT = 1024 * 1024;

/** Kept bytes, counted in `operationMemory` until released. */
class KeptChunks {
  chunks: Buffer[] = [];
  private counted = 0;
  /** Whose share the bytes are counted in: the owner of the call that kept the first of them. */
  private owner: string | undefined;

  keep(data: Buffer): void {
    if (this.counted === 0) this.owner = callOwner();
    operationMemory.reserve(data.length, this.owner);
    this.counted += data.length;
    this.chunks.push(Buffer.from(data));
  }

  release(): void {
    operationMemory.release(this.counted, this.owner);
    this.counted = 0;
    this.chunks = [];
  }
}

export class WholeMessage {
  private readonly kept = new KeptChunks();
  private size = 0;

  constructor(private readonly limit = MESSAGE_LIMIT) {}

  /** `tooLong`: the error for a message over the limit (decryption says CKR_ENCRYPTED_DATA_LEN_RANGE). */
  add(data: Buffer, tooLong: number = CKR.DATA_LEN_RANGE): void {
    if (this.size + data.length > this.limit) throw new Pkcs11Error(tooLong);
    this.kept.keep(data);
    this.size += data.length;
  }

  get length(): number {
    return this.size;
  }

  take(): Buffer {
    const { chunks } = this.kept;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size);
  }

  release(): void {
    this.kept.release();
  }
}

export class HashedMessage {
  private kept: KeptChunks | null = new KeptChunks();
  private size = 0;
  private state: Hash | null = null;

  constructor(readonly hash: HashAlgorithm, private readonly retainLimit = RETAIN_LIMIT) {}

  add(data: Buffer): void {
    if (this.kept) {
      if (this.size + data.length <= this.retainLimit) {
        this.kept.keep(data);
        this.size += data.length;
        return;
      }
      this.state = createHash(this.hash.name);
      for (const chunk of this.kept.chunks) this.state.update(chunk);
      this.kept.release();
      this.kept = null;
    }
    this.state!.update(data);
  }

  /** The whole message while it was small enough to keep, else null. */
  message(): Buffer | null {
    return this.kept ? Buffer.concat(this.kept.chunks, this.size) : null;
  }

  digest(): Buffer {
    if (this.state) return this.state.digest();
    return createHash(this.hash.name).update(this.message()!).digest();
  }

  release(): void {
    this.kept?.release();
  }
}

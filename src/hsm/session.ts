// A session: owned by one application, on one partition, read-only or read-write, with at most
// one active operation of each kind (find, sign, verify, encrypt, decrypt, digest).

import type { Mechanism } from '../pkcs11/mechanism.js';
import type { StreamingOperation } from './mechanisms/contract.js';
import type { Partition } from './partition.js';

/** Output computed for a call whose caller asked for the length only, or gave too small a buffer. */
export interface PendingOutput {
  step: string;
  input: Buffer;
  output: Buffer;
}

export interface ActiveOperation<TFinal, TResult> {
  mechanism: Mechanism;
  stream: StreamingOperation<TFinal, TResult>;
  /** Set once C_xxxUpdate has been called: the single-part call is then refused. */
  multiPart: boolean;
  pending: PendingOutput | null;
}

export interface FindState {
  handles: number[];
  position: number;
}

export class Session {
  find: FindState | null = null;
  sign: ActiveOperation<void, Buffer> | null = null;
  verify: ActiveOperation<Buffer, boolean> | null = null;
  encrypt: ActiveOperation<void, Buffer> | null = null;
  decrypt: ActiveOperation<void, Buffer> | null = null;
  digest: ActiveOperation<void, Buffer> | null = null;
  /** C_WrapKey output kept between a length query and the real call. */
  readonly wrap: { pending: PendingOutput | null } = { pending: null };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly handle: number,
    readonly app: string,
    readonly partition: Partition,
    readonly readWrite: boolean,
  ) {}

  /** Runs calls on this session one after the other, as a PKCS#11 session is used from one thread at a time. */
  run<T>(call: () => Promise<T>): Promise<T> {
    const next = this.queue.then(call, call);
    this.queue = next.catch(() => undefined);
    return next;
  }

  cancelOperations(): void {
    this.find = null;
    this.sign = null;
    this.verify = null;
    this.encrypt = null;
    this.decrypt = null;
    this.digest = null;
    this.wrap.pending = null;
  }
}

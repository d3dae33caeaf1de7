// A session of the token model: owned by one application, on one mounted token (a device's
// token at a slot of the model), read-only or read-write, over the device session that does
// the work. The model keeps the PKCS#11 state
// here: which operations are active, the find cursor, output kept between a length query and
// the call that takes it.

import type { Mechanism } from '../pkcs11/mechanism.js';
import type { ContextLogin, Device, DeviceSession, OperationKind } from './device.js';
import type { PendingOutput } from './output.js';

export interface OperationState {
  mechanism: Mechanism;
  /** Set once C_xxxUpdate has been called: the single-part call is then refused. */
  multiPart: boolean;
  pending: PendingOutput | null;
  /**
   * CKA_ALWAYS_AUTHENTICATE: 'required' until C_Login(CKU_CONTEXT_SPECIFIC) succeeds for this
   * operation, then 'done'; 'device' when the device judges it; 'none' when the key does not ask.
   */
  contextLogin: ContextLogin | 'done';
  /** A digest that took in a key's value (C_DigestKey): it ends at logout, as key operations do. */
  keyed?: boolean;
}

export class Session {
  /** The handles C_FindObjectsInit found and the next to return, or null when no search is active. */
  find: { handles: number[]; next: number } | null = null;
  readonly operations = new Map<OperationKind, OperationState>();
  /** C_WrapKey output kept between a length query and the real call. */
  readonly wrap: { pending: PendingOutput | null } = { pending: null };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly handle: number,
    readonly app: string,
    readonly mount: Mount,
    readonly device: DeviceSession,
  ) {}

  get readWrite(): boolean {
    return this.device.readWrite;
  }

  /** Runs calls on this session one after the other, as a PKCS#11 session is used from one thread at a time. */
  run<T>(call: () => Promise<T>): Promise<T> {
    const next = this.queue.then(call, call);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** A device token at a slot of the model. */
export class Mount {
  /** Open sessions on the token, every application's. */
  readonly sessions = new Set<Session>();
  /** Session objects by handle, with the application and session that made each: only it sees one. */
  readonly sessionObjects = new Map<number, { app: string; session: number }>();

  constructor(readonly slot: number, readonly device: Device, readonly deviceSlot: number) {}
}

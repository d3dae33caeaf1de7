// Logins a role has already passed since the daemon started, checked without the KDF.
//
// Every C_Login otherwise runs scrypt (about 0.1 s by design). After a PIN has opened a role's
// credential once, this keeps, in memory only, per (partition, role): an HMAC-SHA256 of the PIN
// under a key drawn at random when the process starts, and the partition key sealed under a
// second HMAC of the PIN (so the entry gives the partition key back only to that PIN; nothing
// in memory opens it without the PIN). The next login with the same PIN is one HMAC compared in
// constant time and one AES-GCM open. A PIN that does not match runs the KDF as before and
// counts toward the lock; the store on disk is unchanged. An entry is bound to the credential it
// was made from, and is dropped when the role's PIN changes (C_SetPIN, C_InitPIN, C_InitToken),
// when the role locks, and when the partition goes.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Credential } from '../store/credential.js';
import type { Role } from '../store/hsm-store.js';
import { seal, unseal } from '../store/seal.js';

interface Entry {
  /** The credential the PIN opened: a newer one (a PIN change) makes the entry stale. */
  credential: Credential;
  digest: Buffer;
  /** The partition key sealed under the wrapping HMAC of the PIN. */
  sealedKey: Buffer;
}

export class LoginCache {
  private readonly macKey = randomBytes(32);
  private readonly entries = new Map<string, Entry>();

  /** `onKdf` is told of every PIN check that runs the KDF (the tests count them). */
  constructor(private readonly onKdf?: () => void) {}

  private static slot(partitionId: number, role: Role): string {
    return `${partitionId}:${role}`;
  }

  private mac(purpose: 'check' | 'wrap', partitionId: number, role: Role, pin: Buffer): Buffer {
    return createHmac('sha256', this.macKey).update(`ntls-login:${purpose}:${partitionId}:${role}:`).update(pin).digest();
  }

  private static aad(partitionId: number, role: Role): Buffer {
    return Buffer.from(`ntls-login-cache:${partitionId}:${role}`);
  }

  /**
   * The partition key (a fresh copy the caller owns) when this PIN already opened this very
   * credential since start; null when the KDF must judge it.
   */
  check(partitionId: number, role: Role, credential: Credential, pin: Buffer): Buffer | null {
    const entry = this.entries.get(LoginCache.slot(partitionId, role));
    if (entry === undefined) return null;
    if (entry.credential !== credential) {
      this.entries.delete(LoginCache.slot(partitionId, role));
      return null;
    }
    if (!timingSafeEqual(this.mac('check', partitionId, role, pin), entry.digest)) return null;
    const wrapping = this.mac('wrap', partitionId, role, pin);
    try {
      return unseal(wrapping, entry.sealedKey, LoginCache.aad(partitionId, role));
    } finally {
      wrapping.fill(0);
    }
  }

  /** The KDF is about to judge a PIN. */
  kdfRuns(): void {
    this.onKdf?.();
  }

  /** The KDF accepted `pin` for `credential`, which opened `partitionKey`. */
  remember(partitionId: number, role: Role, credential: Credential, pin: Buffer, partitionKey: Buffer): void {
    const wrapping = this.mac('wrap', partitionId, role, pin);
    try {
      this.entries.set(LoginCache.slot(partitionId, role), {
        credential,
        digest: this.mac('check', partitionId, role, pin),
        sealedKey: seal(wrapping, partitionKey, LoginCache.aad(partitionId, role)),
      });
    } finally {
      wrapping.fill(0);
    }
  }

  /** Drops the role's entry (its PIN changed, it locked), or every role's of the partition. */
  forget(partitionId: number, role?: Role): void {
    for (const r of role === undefined ? (['so', 'co', 'cu'] as const) : [role]) this.entries.delete(LoginCache.slot(partitionId, r));
  }

  /** Whether a role has an entry (for tests and `ntls info`). */
  holds(partitionId: number, role: Role): boolean {
    return this.entries.has(LoginCache.slot(partitionId, role));
  }
}

// One object of a token: its attributes, and for keys and private values its secret part.
// The secret part is a private key's PKCS#8, a secret key's CKA_VALUE, or the CKA_VALUE of a
// private data object or certificate. Token objects hold it sealed under the partition key;
// session objects (never stored) hold it in memory.

import { CKA, CKO } from '../pkcs11/constants.js';
import type { AttributeValue } from '../pkcs11/attributes.js';

export interface SessionOwner {
  /** The software session that created it: the object dies with it. */
  session: number;
}

export class HsmObject {
  constructor(
    readonly handle: number,
    readonly partitionId: number,
    public attributes: Map<number, AttributeValue>,
    /** Secret part in clear (session objects). */
    public secret: Buffer | null,
    /** Secret part sealed under the partition key (token objects). */
    public sealed: Buffer | null,
    readonly owner: SessionOwner | null,
  ) {}

  /**
   * Bytes counted against the partition's room: a token object's row in the store (attributes and
   * sealed secret), a session object's attributes and secret in memory; 0 until counted.
   */
  storedBytes = 0;

  get objectClass(): number {
    return this.attributes.get(CKA.CLASS) as number;
  }

  get keyType(): number | undefined {
    return this.attributes.get(CKA.KEY_TYPE) as number | undefined;
  }

  get isToken(): boolean {
    return this.attributes.get(CKA.TOKEN) === true;
  }

  get isPrivate(): boolean {
    return this.attributes.get(CKA.PRIVATE) === true;
  }

  get isKey(): boolean {
    const c = this.objectClass;
    return c === CKO.PUBLIC_KEY || c === CKO.PRIVATE_KEY || c === CKO.SECRET_KEY;
  }

  get hasSecret(): boolean {
    return this.secret !== null || this.sealed !== null;
  }

  flag(type: number): boolean {
    return this.attributes.get(type) === true;
  }
}

/** Additional data binding a sealed secret part to its object. */
export function objectAad(partitionId: number, handle: number): Buffer {
  return Buffer.from(`ntls-object:${partitionId}:${handle}`);
}

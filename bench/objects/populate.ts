// A partition filled with many token objects for the object-search benchmark: key pairs as an
// application makes them (P-256, with label and id), certificates-like public data objects, and
// AES keys, put in through the HSM's import front door (one transaction) so that filling
// 10,000 objects takes seconds, not minutes.
import { randomBytes } from 'node:crypto';
import type { AttributeValue } from '../../src/pkcs11/attributes.js';
import { CKA, CKK, CKM, CKO } from '../../src/pkcs11/constants.js';
import type { ClearObject, SoftwareHsm } from '../../src/hsm/index.js';
import { softwareMechanisms } from '../../src/hsm/mechanisms/index.js';
import { P256 } from '../../src/hsm/mechanisms/curves.js';

/** Label of the i-th object (unique), and its CKA_ID (shared by a key pair). */
export const labelOf = (i: number) => `obj-${i}`;
export const idOf = (i: number) => Buffer.from(`id-${Math.floor(i / 2)}`);

/** `count` objects: pairs of P-256 private and public keys, every tenth pair an AES key and a data object instead. */
export async function benchObjects(count: number): Promise<ClearObject[]> {
  const pair = await softwareMechanisms.generateKeyPair({ type: CKM.EC_KEY_PAIR_GEN, parameter: null }, { ecParams: P256.params });
  const objects: ClearObject[] = [];
  for (let i = 0; i < count; i++) {
    const common: Array<[number, AttributeValue]> = [[CKA.TOKEN, true], [CKA.LABEL, Buffer.from(labelOf(i))], [CKA.MODIFIABLE, true], [CKA.COPYABLE, true], [CKA.DESTROYABLE, true]];
    const kind = Math.floor(i / 2) % 10 === 9 ? (i % 2 === 0 ? 'aes' : 'data') : (i % 2 === 0 ? 'private' : 'public');
    if (kind === 'private') {
      objects.push({
        attributes: new Map<number, AttributeValue>([...common, [CKA.CLASS, CKO.PRIVATE_KEY], [CKA.KEY_TYPE, CKK.EC], [CKA.PRIVATE, true],
          [CKA.ID, idOf(i)], [CKA.SIGN, true], [CKA.SENSITIVE, true], [CKA.EXTRACTABLE, false], [CKA.DERIVE, false],
          ...pair.privateAttributes]),
        secret: pair.privateKey.der,
      });
    } else if (kind === 'public') {
      objects.push({
        attributes: new Map<number, AttributeValue>([...common, [CKA.CLASS, CKO.PUBLIC_KEY], [CKA.KEY_TYPE, CKK.EC], [CKA.PRIVATE, false],
          [CKA.ID, idOf(i)], [CKA.VERIFY, true], [CKA.DERIVE, false], ...pair.publicAttributes]),
        secret: null,
      });
    } else if (kind === 'aes') {
      objects.push({
        attributes: new Map<number, AttributeValue>([...common, [CKA.CLASS, CKO.SECRET_KEY], [CKA.KEY_TYPE, CKK.AES], [CKA.PRIVATE, true],
          [CKA.ID, idOf(i)], [CKA.ENCRYPT, true], [CKA.DECRYPT, true], [CKA.SENSITIVE, true], [CKA.EXTRACTABLE, false], [CKA.VALUE_LEN, 32]]),
        secret: randomBytes(32),
      });
    } else {
      objects.push({
        attributes: new Map<number, AttributeValue>([...common, [CKA.CLASS, CKO.DATA], [CKA.PRIVATE, false],
          [CKA.APPLICATION, Buffer.from('bench')], [CKA.VALUE, randomBytes(64)]]),
        secret: null,
      });
    }
  }
  return objects;
}

/** Fills the partition in `slot` (SO or CO `credential`) with `count` objects. */
export async function populate(hsm: SoftwareHsm, slot: number, credential: { role: 'so' | 'co'; pin: string }, count: number): Promise<void> {
  await hsm.importObjects(slot, credential, await benchObjects(count), 'add');
}

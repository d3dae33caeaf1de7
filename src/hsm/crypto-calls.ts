// Operation calls: C_SignInit/Sign/SignUpdate/SignFinal, the same for Verify, Encrypt, Decrypt
// and Digest. The token model checks session state, key visibility and usage attributes, then
// hands the key material to the mechanisms. One operation of each kind per session.
// As PKCS#11 says, a call that fails (other than CKR_BUFFER_TOO_SMALL or a length query) ends
// the operation.

import { CKA, CKF, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { materialOf, usableKey, visibleObject, type Call } from './access.js';
import { sizedOutput, BufferTooSmallError, type Capacity } from './output.js';
import type { ActiveOperation, Session } from './session.js';

type OutputKind = 'sign' | 'encrypt' | 'decrypt' | 'digest';
type KeyKind = 'sign' | 'verify' | 'encrypt' | 'decrypt';

const USAGE: Record<KeyKind, number> = { sign: CKA.SIGN, verify: CKA.VERIFY, encrypt: CKA.ENCRYPT, decrypt: CKA.DECRYPT };
const FLAG: Record<KeyKind | 'digest', number> = {
  sign: CKF.SIGN, verify: CKF.VERIFY, encrypt: CKF.ENCRYPT, decrypt: CKF.DECRYPT, digest: CKF.DIGEST,
};
const EMPTY = Buffer.alloc(0);

function active<K extends OutputKind | 'verify'>(session: Session, kind: K): NonNullable<Session[K]> {
  const op = session[kind];
  if (op === null) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
  return op as NonNullable<Session[K]>;
}

/** Runs a step; any failure but CKR_BUFFER_TOO_SMALL ends the operation. */
async function step<T>(session: Session, kind: OutputKind | 'verify', body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (!(error instanceof BufferTooSmallError)) session[kind] = null;
    if (error instanceof Pkcs11Error) throw error;
    throw new Pkcs11Error(CKR.FUNCTION_FAILED, (error as Error).message);
  }
}

/** Single-part mechanisms (raw ECDSA, RSA PKCS#1, key wrap) end the operation on C_xxxUpdate, as SoftHSM does. */
function refuseMultiPart(call: Call, kind: OutputKind | 'verify', mechanism: Mechanism): void {
  if (!call.hsm.singlePart.has(mechanism.type)) return;
  call.session[kind] = null;
  throw new Pkcs11Error(CKR.FUNCTION_NOT_SUPPORTED, 'single-part mechanism');
}

/** C_SignInit, C_VerifyInit, C_EncryptInit, C_DecryptInit. */
export function keyOperationInit(call: Call, kind: KeyKind, mechanism: Mechanism, keyHandle: number): void {
  const session = call.session;
  if (session[kind] !== null) throw new Pkcs11Error(CKR.OPERATION_ACTIVE);
  call.hsm.mechanismFor(mechanism.type, FLAG[kind]);
  const key = usableKey(call, keyHandle, USAGE[kind], mechanism.type);
  const material = materialOf(call, key);
  const mechanisms = call.hsm.mechanisms;
  switch (kind) {
    case 'sign': session.sign = fresh(mechanism, mechanisms.sign(mechanism, material)); break;
    case 'verify': session.verify = fresh(mechanism, mechanisms.verify(mechanism, material)); break;
    case 'encrypt': session.encrypt = fresh(mechanism, mechanisms.encrypt(mechanism, material)); break;
    case 'decrypt': session.decrypt = fresh(mechanism, mechanisms.decrypt(mechanism, material)); break;
  }
}

export function digestInit(call: Call, mechanism: Mechanism): void {
  const session = call.session;
  if (session.digest !== null) throw new Pkcs11Error(CKR.OPERATION_ACTIVE);
  call.hsm.mechanismFor(mechanism.type, FLAG.digest);
  session.digest = fresh(mechanism, call.hsm.mechanisms.digest(mechanism));
}

function fresh<F, R>(mechanism: Mechanism, stream: ActiveOperation<F, R>['stream']): ActiveOperation<F, R> {
  return { mechanism, stream, multiPart: false, pending: null };
}

/** C_Sign, C_Encrypt, C_Decrypt, C_Digest: update with all the data, then final. */
export function singlePart(call: Call, kind: OutputKind, data: Buffer, capacity: Capacity): Promise<Buffer> {
  const session = call.session;
  const op = active(session, kind);
  if (op.multiPart) throw new Pkcs11Error(CKR.OPERATION_ACTIVE, 'a multi-part operation is under way');
  return step(session, kind, async () => {
    const { output, delivered } = await sizedOutput(op, 'single', data, capacity, async () => {
      const head = (await op.stream.update(data)) ?? EMPTY;
      const tail = await op.stream.final();
      return head.length === 0 ? tail : Buffer.concat([head, tail]);
    });
    if (delivered) session[kind] = null;
    return output;
  });
}

/** C_SignUpdate, C_DigestUpdate (no output) and C_EncryptUpdate, C_DecryptUpdate (output so far). */
export function update(call: Call, kind: OutputKind, data: Buffer, capacity: Capacity): Promise<Buffer> {
  const session = call.session;
  const op = active(session, kind);
  refuseMultiPart(call, kind, op.mechanism);
  op.multiPart = true;
  return step(session, kind, async () => {
    const { output } = await sizedOutput(op, 'update', data, capacity, async () => (await op.stream.update(data)) ?? EMPTY);
    return output;
  });
}

/** C_SignFinal, C_EncryptFinal, C_DecryptFinal, C_DigestFinal. */
export function final(call: Call, kind: OutputKind, capacity: Capacity): Promise<Buffer> {
  const session = call.session;
  const op = active(session, kind);
  return step(session, kind, async () => {
    const { output, delivered } = await sizedOutput(op, 'final', EMPTY, capacity, () => op.stream.final());
    if (delivered) session[kind] = null;
    return output;
  });
}

/** C_Verify: throws CKR_SIGNATURE_INVALID when the signature does not verify. */
export function verify(call: Call, data: Buffer, signature: Buffer): Promise<void> {
  const session = call.session;
  const op = active(session, 'verify');
  if (op.multiPart) throw new Pkcs11Error(CKR.OPERATION_ACTIVE, 'a multi-part operation is under way');
  return step(session, 'verify', async () => {
    await op.stream.update(data);
    const valid = await op.stream.final(signature);
    session.verify = null;
    if (!valid) throw new Pkcs11Error(CKR.SIGNATURE_INVALID);
  });
}

export function verifyUpdate(call: Call, data: Buffer): Promise<void> {
  const session = call.session;
  const op = active(session, 'verify');
  refuseMultiPart(call, 'verify', op.mechanism);
  op.multiPart = true;
  return step(session, 'verify', async () => {
    await op.stream.update(data);
  });
}

export function verifyFinal(call: Call, signature: Buffer): Promise<void> {
  const session = call.session;
  const op = active(session, 'verify');
  return step(session, 'verify', async () => {
    const valid = await op.stream.final(signature);
    session.verify = null;
    if (!valid) throw new Pkcs11Error(CKR.SIGNATURE_INVALID);
  });
}

/** C_DigestKey: feeds a secret key's value into the digest (the key is not revealed). */
export function digestKey(call: Call, keyHandle: number): Promise<void> {
  const session = call.session;
  const op = active(session, 'digest');
  op.multiPart = true;
  return step(session, 'digest', async () => {
    const key = visibleObject(call, keyHandle, CKR.KEY_HANDLE_INVALID);
    if (key.objectClass !== CKO.SECRET_KEY) throw new Pkcs11Error(CKR.KEY_INDIGESTIBLE);
    await op.stream.update(materialOf(call, key).der);
  });
}

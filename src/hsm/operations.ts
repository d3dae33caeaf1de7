// The software HSM's operations: a stream per active operation of a session, from the
// mechanisms. The token model keeps the operation's PKCS#11 state (active, multi-part, output
// kept for a length query); here the key's usage and the mechanism's fit are judged, and the
// data goes through.

import { CKA, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import type { ContextLogin, OperationKind } from '../token/device.js';
import { materialOf, objectOf, usableKey, type Call } from './call.js';
import type { StreamingOperation } from './mechanisms/contract.js';
import type { SoftwareSession } from './session.js';

const USAGE: Record<Exclude<OperationKind, 'digest'>, number> = { sign: CKA.SIGN, verify: CKA.VERIFY, encrypt: CKA.ENCRYPT, decrypt: CKA.DECRYPT };
const EMPTY = Buffer.alloc(0);
/**
 * Symmetric work runs on the event loop that serves every client: a 4 MiB triple-DES update is
 * a quarter of a second. Input longer than this goes through in slices with a turn of the loop
 * between them, so another client's call waits for a slice, not the whole (what the operation
 * computes is the same: every mechanism takes its input in any number of parts).
 */
const SLICE_BYTES = 128 * 1024;

async function feed(op: StreamingOperation<unknown, unknown>, data: Buffer): Promise<Buffer | null> {
  if (data.length <= SLICE_BYTES) return (await op.update(data)) ?? null;
  const outputs: Buffer[] = [];
  for (let at = 0; at < data.length; at += SLICE_BYTES) {
    if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const out = await op.update(data.subarray(at, at + SLICE_BYTES));
    if (out && out.length > 0) outputs.push(out);
  }
  return outputs.length === 0 ? null : outputs.length === 1 ? outputs[0]! : Buffer.concat(outputs);
}

function stream(session: SoftwareSession, kind: OperationKind): StreamingOperation<unknown, unknown> {
  const op = session.operations.get(kind);
  if (op === undefined) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
  return op;
}

/** C_SignInit, C_VerifyInit, C_EncryptInit, C_DecryptInit (a key) and C_DigestInit (none). */
export function operationInit(call: Call, kind: OperationKind, mechanism: Mechanism, keyHandle: number | null): ContextLogin {
  const { mechanisms } = call.vault;
  if (kind === 'digest') {
    call.session.operations.set(kind, mechanisms.digest(mechanism));
    return 'none';
  }
  if (keyHandle === null) throw new Pkcs11Error(CKR.KEY_HANDLE_INVALID);
  const key = usableKey(call, keyHandle, USAGE[kind], mechanism.type);
  const material = materialOf(call, key);
  call.session.operations.set(kind, mechanisms[kind](mechanism, material));
  // A private key with CKA_ALWAYS_AUTHENTICATE wants the PIN again for each signature or decryption.
  return key.objectClass === CKO.PRIVATE_KEY && key.flag(CKA.ALWAYS_AUTHENTICATE) ? 'required' : 'none';
}

export async function operationUpdate(session: SoftwareSession, kind: OperationKind, data: Buffer): Promise<Buffer | null> {
  return feed(stream(session, kind), data);
}

export async function operationFinal(session: SoftwareSession, kind: OperationKind): Promise<Buffer> {
  const op = stream(session, kind);
  const output = await op.final(undefined) as Buffer;
  session.operations.delete(kind);
  return output;
}

/** C_Sign, C_Encrypt, C_Decrypt, C_Digest: update with all the data, then final. */
export async function operationSingle(session: SoftwareSession, kind: OperationKind, data: Buffer): Promise<Buffer> {
  const op = stream(session, kind);
  const head = (await feed(op, data)) ?? EMPTY;
  const tail = await op.final(undefined) as Buffer;
  session.operations.delete(kind);
  return head.length === 0 ? tail : Buffer.concat([head, tail]);
}

/** C_Verify (data given) and C_VerifyFinal (null): CKR_SIGNATURE_INVALID when it does not verify. */
export async function verify(session: SoftwareSession, data: Buffer | null, signature: Buffer): Promise<void> {
  const op = stream(session, 'verify');
  if (data !== null) await feed(op, data);
  const valid = await op.final(signature);
  session.operations.delete('verify');
  if (!valid) throw new Pkcs11Error(CKR.SIGNATURE_INVALID);
}

/** C_DigestKey: feeds a secret key's value into the digest (the key is not revealed). */
export async function digestKey(call: Call, keyHandle: number): Promise<void> {
  const op = stream(call.session, 'digest');
  const key = objectOf(call, keyHandle, CKR.KEY_HANDLE_INVALID);
  if (key.objectClass !== CKO.SECRET_KEY) throw new Pkcs11Error(CKR.KEY_INDIGESTIBLE);
  await op.update(materialOf(call, key).der);
}

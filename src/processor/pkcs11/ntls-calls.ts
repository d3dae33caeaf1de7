// NTLS's own requests, in the private call-id range 0x4E54xxxx ("NT"), laid out as p11-kit
// messages: call id (uint32), signature (byte array), arguments. Documented in docs/protocol.md.
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import { WireReader, WireWriter } from '../../protocol/p11kit/index.js';
import { NtlsCall } from '../contract.js';

export const NtlsAppCall = {
  SetApplicationId: 0x4e540010,
  OpenAccess: 0x4e540011,
  CloseAccess: 0x4e540012,
} as const;

export const NTLS_CALL_NAMES: ReadonlyMap<number, string> = new Map([
  [NtlsCall.Keepalive, 'NTLS_Keepalive'],
  [NtlsCall.Echo, 'NTLS_Echo'],
  [NtlsAppCall.SetApplicationId, 'NTLS_SetApplicationId'],
  [NtlsAppCall.OpenAccess, 'NTLS_OpenAccess'],
  [NtlsAppCall.CloseAccess, 'NTLS_CloseAccess'],
]);

export interface ApplicationId {
  major: number;
  minor: number;
}

/** Reads the "uu" arguments (major, minor) of an application-id call. */
export function readApplicationId(body: Buffer): ApplicationId {
  try {
    const reader = new WireReader(body);
    reader.uint32();
    const signature = reader.byteArray();
    if (!signature || signature.toString('latin1') !== 'uu') throw new Error('signature');
    const major = reader.ulong();
    const minor = reader.ulong();
    if (reader.remaining !== 0) throw new Error('trailing bytes');
    if (major < 0 || major > 0xffffffff || minor < 0 || minor > 0xffffffff) throw new Error('range');
    return { major, minor };
  } catch {
    throw new Pkcs11Error(CKR.ARGUMENTS_BAD, 'application id call malformed');
  }
}

/** Builds the request body of an application-id call (for clients and tests). */
export function applicationIdRequest(call: number, id: ApplicationId): Buffer {
  const writer = new WireWriter(32);
  writer.uint32(call);
  writer.byteArray(Buffer.from('uu', 'latin1'));
  writer.ulong(id.major);
  writer.ulong(id.minor);
  return writer.finish();
}

/** The empty success answer of an NTLS call: its call id and an empty signature. */
export function emptyAnswer(call: number): Buffer {
  const writer = new WireWriter(8);
  writer.uint32(call);
  writer.byteArray(Buffer.alloc(0));
  return writer.finish();
}

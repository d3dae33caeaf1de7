// The p11-kit RPC call table. Ids 0-65 and their signatures are those of p11-kit 0.24.1
// (p11-kit/rpc-message.h, `p11_rpc_calls`), the version in Debian bookworm, which speaks protocol
// version 0. Later p11-kit appends the PKCS#11 3.0 calls (66-87, p11-kit 0.25.0, still
// protocol version 0), C_InitToken2 (88, protocol version 1, p11-kit 0.25.0) and C_DeriveKey2
// (89, protocol version 2, p11-kit 0.25.6). Field names name each signature element in order;
// the typed messages of messages.ts are built from them.
//
// Signature letters (rpc-message.h): u CK_ULONG, y CK_BYTE, v CK_VERSION, s space-padded
// string, z NUL-terminated string, M CK_MECHANISM, P mechanism parameter update, a<x> array of
// <x>, f<x> output buffer for <x>, A CK_ATTRIBUTE; and ours, * the whole body unparsed.

/** Bytes C_Initialize must carry (P11_RPC_HANDSHAKE). */
export const P11KIT_HANDSHAKE = Buffer.from('PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1', 'ascii');

/** Highest protocol version this codec speaks (C_DeriveKey2, version-2 mechanism framing). */
export const P11KIT_PROTOCOL_VERSION_MAX = 2;
/** p11-kit 0.24.1 (Debian bookworm) only speaks version 0. */
export const P11KIT_PROTOCOL_VERSION_0_24 = 0;

/**
 * The server's answer to the client's version byte: the lower of the two
 * (p11_kit_remote_serve_module in rpc-server.c clamps to its maximum).
 */
export function negotiateVersion(clientVersion: number, ours: number = P11KIT_PROTOCOL_VERSION_MAX): number {
  return Math.min(clientVersion, ours);
}

export interface CallSpec {
  readonly id: number;
  readonly name: string;
  /** null: may not be sent as a request (ERROR). */
  readonly request: string | null;
  readonly response: string;
  readonly requestFields: readonly string[];
  readonly responseFields: readonly string[];
  /** Protocol version from which a p11-kit client uses the call. */
  readonly since: number;
}

const S = ['session'] as const;
const INIT = ['session', 'mechanism', 'key'] as const;

export const P11KIT_CALLS = [
  { id: 0, name: 'ERROR', request: null, response: 'u', requestFields: [], responseFields: ['rv'], since: 0 },
  { id: 1, name: 'C_Initialize', request: 'ayyay', response: '', requestFields: ['handshake', 'reservedPresent', 'reserved'], responseFields: [], since: 0 },
  { id: 2, name: 'C_Finalize', request: '', response: '', requestFields: [], responseFields: [], since: 0 },
  { id: 3, name: 'C_GetInfo', request: '', response: 'vsusv', requestFields: [], responseFields: ['cryptokiVersion', 'manufacturerId', 'flags', 'libraryDescription', 'libraryVersion'], since: 0 },
  { id: 4, name: 'C_GetSlotList', request: 'yfu', response: 'au', requestFields: ['tokenPresent', 'slotList'], responseFields: ['slotList'], since: 0 },
  { id: 5, name: 'C_GetSlotInfo', request: 'u', response: 'ssuvv', requestFields: ['slotId'], responseFields: ['slotDescription', 'manufacturerId', 'flags', 'hardwareVersion', 'firmwareVersion'], since: 0 },
  {
    id: 6, name: 'C_GetTokenInfo', request: 'u', response: 'ssssuuuuuuuuuuuvvs', requestFields: ['slotId'],
    responseFields: ['label', 'manufacturerId', 'model', 'serialNumber', 'flags', 'maxSessionCount', 'sessionCount', 'maxRwSessionCount', 'rwSessionCount', 'maxPinLen', 'minPinLen', 'totalPublicMemory', 'freePublicMemory', 'totalPrivateMemory', 'freePrivateMemory', 'hardwareVersion', 'firmwareVersion', 'utcTime'],
    since: 0,
  },
  { id: 7, name: 'C_GetMechanismList', request: 'ufu', response: 'au', requestFields: ['slotId', 'mechanismList'], responseFields: ['mechanismList'], since: 0 },
  { id: 8, name: 'C_GetMechanismInfo', request: 'uu', response: 'uuu', requestFields: ['slotId', 'type'], responseFields: ['minKeySize', 'maxKeySize', 'flags'], since: 0 },
  { id: 9, name: 'C_InitToken', request: 'uayz', response: '', requestFields: ['slotId', 'pin', 'label'], responseFields: [], since: 0 },
  { id: 10, name: 'C_OpenSession', request: 'uu', response: 'u', requestFields: ['slotId', 'flags'], responseFields: ['session'], since: 0 },
  { id: 11, name: 'C_CloseSession', request: 'u', response: '', requestFields: S, responseFields: [], since: 0 },
  { id: 12, name: 'C_CloseAllSessions', request: 'u', response: '', requestFields: ['slotId'], responseFields: [], since: 0 },
  { id: 13, name: 'C_GetSessionInfo', request: 'u', response: 'uuuu', requestFields: S, responseFields: ['slotId', 'state', 'flags', 'deviceError'], since: 0 },
  { id: 14, name: 'C_InitPIN', request: 'uay', response: '', requestFields: ['session', 'pin'], responseFields: [], since: 0 },
  { id: 15, name: 'C_SetPIN', request: 'uayay', response: '', requestFields: ['session', 'oldPin', 'newPin'], responseFields: [], since: 0 },
  { id: 16, name: 'C_GetOperationState', request: 'ufy', response: 'ay', requestFields: ['session', 'operationState'], responseFields: ['operationState'], since: 0 },
  { id: 17, name: 'C_SetOperationState', request: 'uayuu', response: '', requestFields: ['session', 'operationState', 'encryptionKey', 'authenticationKey'], responseFields: [], since: 0 },
  { id: 18, name: 'C_Login', request: 'uuay', response: '', requestFields: ['session', 'userType', 'pin'], responseFields: [], since: 0 },
  { id: 19, name: 'C_Logout', request: 'u', response: '', requestFields: S, responseFields: [], since: 0 },
  { id: 20, name: 'C_CreateObject', request: 'uaA', response: 'u', requestFields: ['session', 'template'], responseFields: ['object'], since: 0 },
  { id: 21, name: 'C_CopyObject', request: 'uuaA', response: 'u', requestFields: ['session', 'object', 'template'], responseFields: ['object'], since: 0 },
  { id: 22, name: 'C_DestroyObject', request: 'uu', response: '', requestFields: ['session', 'object'], responseFields: [], since: 0 },
  { id: 23, name: 'C_GetObjectSize', request: 'uu', response: 'u', requestFields: ['session', 'object'], responseFields: ['size'], since: 0 },
  { id: 24, name: 'C_GetAttributeValue', request: 'uufA', response: 'aAu', requestFields: ['session', 'object', 'template'], responseFields: ['template', 'result'], since: 0 },
  { id: 25, name: 'C_SetAttributeValue', request: 'uuaA', response: '', requestFields: ['session', 'object', 'template'], responseFields: [], since: 0 },
  { id: 26, name: 'C_FindObjectsInit', request: 'uaA', response: '', requestFields: ['session', 'template'], responseFields: [], since: 0 },
  { id: 27, name: 'C_FindObjects', request: 'ufu', response: 'au', requestFields: ['session', 'objects'], responseFields: ['objects'], since: 0 },
  { id: 28, name: 'C_FindObjectsFinal', request: 'u', response: '', requestFields: S, responseFields: [], since: 0 },
  { id: 29, name: 'C_EncryptInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 30, name: 'C_Encrypt', request: 'uayfy', response: 'ay', requestFields: ['session', 'data', 'encryptedData'], responseFields: ['encryptedData'], since: 0 },
  { id: 31, name: 'C_EncryptUpdate', request: 'uayfy', response: 'ay', requestFields: ['session', 'part', 'encryptedPart'], responseFields: ['encryptedPart'], since: 0 },
  { id: 32, name: 'C_EncryptFinal', request: 'ufy', response: 'ay', requestFields: ['session', 'lastEncryptedPart'], responseFields: ['lastEncryptedPart'], since: 0 },
  { id: 33, name: 'C_DecryptInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 34, name: 'C_Decrypt', request: 'uayfy', response: 'ay', requestFields: ['session', 'encryptedData', 'data'], responseFields: ['data'], since: 0 },
  { id: 35, name: 'C_DecryptUpdate', request: 'uayfy', response: 'ay', requestFields: ['session', 'encryptedPart', 'part'], responseFields: ['part'], since: 0 },
  { id: 36, name: 'C_DecryptFinal', request: 'ufy', response: 'ay', requestFields: ['session', 'lastPart'], responseFields: ['lastPart'], since: 0 },
  { id: 37, name: 'C_DigestInit', request: 'uM', response: '', requestFields: ['session', 'mechanism'], responseFields: [], since: 0 },
  { id: 38, name: 'C_Digest', request: 'uayfy', response: 'ay', requestFields: ['session', 'data', 'digest'], responseFields: ['digest'], since: 0 },
  { id: 39, name: 'C_DigestUpdate', request: 'uay', response: '', requestFields: ['session', 'part'], responseFields: [], since: 0 },
  { id: 40, name: 'C_DigestKey', request: 'uu', response: '', requestFields: ['session', 'key'], responseFields: [], since: 0 },
  { id: 41, name: 'C_DigestFinal', request: 'ufy', response: 'ay', requestFields: ['session', 'digest'], responseFields: ['digest'], since: 0 },
  { id: 42, name: 'C_SignInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 43, name: 'C_Sign', request: 'uayfy', response: 'ay', requestFields: ['session', 'data', 'signature'], responseFields: ['signature'], since: 0 },
  { id: 44, name: 'C_SignUpdate', request: 'uay', response: '', requestFields: ['session', 'part'], responseFields: [], since: 0 },
  { id: 45, name: 'C_SignFinal', request: 'ufy', response: 'ay', requestFields: ['session', 'signature'], responseFields: ['signature'], since: 0 },
  { id: 46, name: 'C_SignRecoverInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 47, name: 'C_SignRecover', request: 'uayfy', response: 'ay', requestFields: ['session', 'data', 'signature'], responseFields: ['signature'], since: 0 },
  { id: 48, name: 'C_VerifyInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 49, name: 'C_Verify', request: 'uayay', response: '', requestFields: ['session', 'data', 'signature'], responseFields: [], since: 0 },
  { id: 50, name: 'C_VerifyUpdate', request: 'uay', response: '', requestFields: ['session', 'part'], responseFields: [], since: 0 },
  { id: 51, name: 'C_VerifyFinal', request: 'uay', response: '', requestFields: ['session', 'signature'], responseFields: [], since: 0 },
  { id: 52, name: 'C_VerifyRecoverInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 53, name: 'C_VerifyRecover', request: 'uayfy', response: 'ay', requestFields: ['session', 'signature', 'data'], responseFields: ['data'], since: 0 },
  { id: 54, name: 'C_DigestEncryptUpdate', request: 'uayfy', response: 'ay', requestFields: ['session', 'part', 'encryptedPart'], responseFields: ['encryptedPart'], since: 0 },
  { id: 55, name: 'C_DecryptDigestUpdate', request: 'uayfy', response: 'ay', requestFields: ['session', 'encryptedPart', 'part'], responseFields: ['part'], since: 0 },
  { id: 56, name: 'C_SignEncryptUpdate', request: 'uayfy', response: 'ay', requestFields: ['session', 'part', 'encryptedPart'], responseFields: ['encryptedPart'], since: 0 },
  { id: 57, name: 'C_DecryptVerifyUpdate', request: 'uayfy', response: 'ay', requestFields: ['session', 'encryptedPart', 'part'], responseFields: ['part'], since: 0 },
  { id: 58, name: 'C_GenerateKey', request: 'uMaA', response: 'u', requestFields: ['session', 'mechanism', 'template'], responseFields: ['key'], since: 0 },
  { id: 59, name: 'C_GenerateKeyPair', request: 'uMaAaA', response: 'uu', requestFields: ['session', 'mechanism', 'publicKeyTemplate', 'privateKeyTemplate'], responseFields: ['publicKey', 'privateKey'], since: 0 },
  { id: 60, name: 'C_WrapKey', request: 'uMuufy', response: 'ay', requestFields: ['session', 'mechanism', 'wrappingKey', 'key', 'wrappedKey'], responseFields: ['wrappedKey'], since: 0 },
  { id: 61, name: 'C_UnwrapKey', request: 'uMuayaA', response: 'u', requestFields: ['session', 'mechanism', 'unwrappingKey', 'wrappedKey', 'template'], responseFields: ['key'], since: 0 },
  { id: 62, name: 'C_DeriveKey', request: 'uMuaA', response: 'u', requestFields: ['session', 'mechanism', 'baseKey', 'template'], responseFields: ['key'], since: 0 },
  { id: 63, name: 'C_SeedRandom', request: 'uay', response: '', requestFields: ['session', 'seed'], responseFields: [], since: 0 },
  { id: 64, name: 'C_GenerateRandom', request: 'ufy', response: 'ay', requestFields: ['session', 'randomData'], responseFields: ['randomData'], since: 0 },
  { id: 65, name: 'C_WaitForSlotEvent', request: 'u', response: 'u', requestFields: ['flags'], responseFields: ['slotId'], since: 0 },
  // PKCS #11 3.0 (p11-kit 0.25.0)
  { id: 66, name: 'C_LoginUser', request: 'uuayay', response: '', requestFields: ['session', 'userType', 'pin', 'username'], responseFields: [], since: 0 },
  { id: 67, name: 'C_SessionCancel', request: 'uu', response: '', requestFields: ['session', 'flags'], responseFields: [], since: 0 },
  { id: 68, name: 'C_MessageEncryptInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 69, name: 'C_EncryptMessage', request: 'uayayayfy', response: 'ay', requestFields: ['session', 'parameter', 'associatedData', 'plaintext', 'ciphertext'], responseFields: ['ciphertext'], since: 0 },
  { id: 70, name: 'C_EncryptMessageBegin', request: 'uayay', response: '', requestFields: ['session', 'parameter', 'associatedData'], responseFields: [], since: 0 },
  { id: 71, name: 'C_EncryptMessageNext', request: 'uayayfyu', response: 'ay', requestFields: ['session', 'parameter', 'plaintextPart', 'ciphertextPart', 'flags'], responseFields: ['ciphertextPart'], since: 0 },
  { id: 72, name: 'C_MessageEncryptFinal', request: 'u', response: '', requestFields: S, responseFields: [], since: 0 },
  { id: 73, name: 'C_MessageDecryptInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 74, name: 'C_DecryptMessage', request: 'uayayayfy', response: 'ay', requestFields: ['session', 'parameter', 'associatedData', 'ciphertext', 'plaintext'], responseFields: ['plaintext'], since: 0 },
  { id: 75, name: 'C_DecryptMessageBegin', request: 'uayay', response: '', requestFields: ['session', 'parameter', 'associatedData'], responseFields: [], since: 0 },
  { id: 76, name: 'C_DecryptMessageNext', request: 'uayayfyu', response: 'ay', requestFields: ['session', 'parameter', 'ciphertextPart', 'plaintextPart', 'flags'], responseFields: ['plaintextPart'], since: 0 },
  { id: 77, name: 'C_MessageDecryptFinal', request: 'u', response: '', requestFields: S, responseFields: [], since: 0 },
  { id: 78, name: 'C_MessageSignInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 79, name: 'C_SignMessage', request: 'uayayfy', response: 'ay', requestFields: ['session', 'parameter', 'data', 'signature'], responseFields: ['signature'], since: 0 },
  { id: 80, name: 'C_SignMessageBegin', request: 'uay', response: '', requestFields: ['session', 'parameter'], responseFields: [], since: 0 },
  { id: 81, name: 'C_SignMessageNext', request: 'uayayyfy', response: 'ay', requestFields: ['session', 'parameter', 'data', 'signatureExpected', 'signature'], responseFields: ['signature'], since: 0 },
  { id: 82, name: 'C_MessageSignFinal', request: 'u', response: '', requestFields: S, responseFields: [], since: 0 },
  { id: 83, name: 'C_MessageVerifyInit', request: 'uMu', response: '', requestFields: INIT, responseFields: [], since: 0 },
  { id: 84, name: 'C_VerifyMessage', request: 'uayayay', response: '', requestFields: ['session', 'parameter', 'data', 'signature'], responseFields: [], since: 0 },
  { id: 85, name: 'C_VerifyMessageBegin', request: 'uay', response: '', requestFields: ['session', 'parameter'], responseFields: [], since: 0 },
  { id: 86, name: 'C_VerifyMessageNext', request: 'uayayay', response: '', requestFields: ['session', 'parameter', 'data', 'signature'], responseFields: [], since: 0 },
  { id: 87, name: 'C_MessageVerifyFinal', request: 'u', response: '', requestFields: S, responseFields: [], since: 0 },
  // Protocol version 1 (p11-kit 0.25.0): the label travels space padded, 32 bytes.
  { id: 88, name: 'C_InitToken2', request: 'uays', response: '', requestFields: ['slotId', 'pin', 'label'], responseFields: [], since: 1 },
  // Protocol version 2 (p11-kit 0.25.6): the answer carries the call's result and the
  // mechanism parameter back, so output fields of a parameter can be size-queried.
  { id: 89, name: 'C_DeriveKey2', request: 'uMuaA', response: 'uPu', requestFields: ['session', 'mechanism', 'baseKey', 'template'], responseFields: ['result', 'parameterUpdate', 'key'], since: 2 },
] as const satisfies readonly CallSpec[];

/**
 * NTLS's own calls, in a private range of the call-id space (0x4E54xxxx, "NT"; docs/protocol.md),
 * framed and typed as the p11-kit calls are. A malformed one is answered CKR_ARGUMENTS_BAD.
 */
export const NTLS_CALLS = [
  { id: 0x4e540001, name: 'NTLS_Keepalive', request: '', response: '', requestFields: [], responseFields: [], since: 0 },
  // `*`: the body as it is, unparsed (echo answers the request body byte for byte).
  { id: 0x4e540002, name: 'NTLS_Echo', request: '*', response: '*', requestFields: ['body'], responseFields: ['body'], since: 0 },
  { id: 0x4e540010, name: 'NTLS_SetApplicationId', request: 'uu', response: '', requestFields: ['major', 'minor'], responseFields: [], since: 0 },
  { id: 0x4e540011, name: 'NTLS_OpenAccess', request: 'uu', response: '', requestFields: ['major', 'minor'], responseFields: [], since: 0 },
  { id: 0x4e540012, name: 'NTLS_CloseAccess', request: 'uu', response: '', requestFields: ['major', 'minor'], responseFields: [], since: 0 },
  { id: 0x4e540020, name: 'NTLS_KeepObjectHandles', request: '', response: '', requestFields: [], responseFields: [], since: 0 },
] as const satisfies readonly CallSpec[];

export type P11KitCall = (typeof P11KIT_CALLS)[number] | (typeof NTLS_CALLS)[number];
export type CallName = P11KitCall['name'];
export type RequestCallName = Exclude<CallName, 'ERROR'>;

/** Number of calls of p11-kit 0.24.1 (P11_RPC_CALL_MAX there). */
export const P11KIT_0_24_CALL_MAX = 66;
export const P11KIT_CALL_MAX = P11KIT_CALLS.length;

export const CALL_ID = Object.fromEntries([...P11KIT_CALLS, ...NTLS_CALLS].map((c) => [c.name, c.id])) as { readonly [N in CallName]: Extract<P11KitCall, { name: N }>['id'] };

/** Splits a signature into its elements ('ay', 'fy', 'aA', 'u', ...). */
export function signatureElements(signature: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < signature.length; i++) {
    const c = signature[i]!;
    if ((c === 'a' || c === 'f') && i + 1 < signature.length) {
      out.push(c + signature[i + 1]!);
      i++;
    } else {
      out.push(c);
    }
  }
  return out;
}

const NTLS_BY_ID: ReadonlyMap<number, P11KitCall> = new Map(NTLS_CALLS.map((c) => [c.id, c]));

export function callById(id: number): P11KitCall | undefined {
  return id >= 0 && id < P11KIT_CALLS.length ? P11KIT_CALLS[id] : NTLS_BY_ID.get(id);
}

/** True for NTLS's own calls (the private range). */
export function isNtlsCall(id: number): boolean {
  return NTLS_BY_ID.has(id);
}

// Table sanity, checked once at load: p11-kit's ids are positions, field lists match signatures.
for (const [i, c] of [...P11KIT_CALLS, ...NTLS_CALLS].entries() as Iterable<[number, CallSpec]>) {
  if (i < P11KIT_CALLS.length && c.id !== i) throw new Error(`p11-kit call table out of order at ${c.name}`);
  if (c.request !== null && signatureElements(c.request).length !== c.requestFields.length) throw new Error(`request fields of ${c.name}`);
  if (signatureElements(c.response).length !== c.responseFields.length) throw new Error(`response fields of ${c.name}`);
}

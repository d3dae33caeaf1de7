// The PKCS#11 calls served over p11-kit RPC: each decoded request becomes a call on the
// client's HSM application, through the client's slot view, and its answer the response
// p11-kit's own server would give. A call without a handler here is not supported.
import type { HsmBackend, TokenApplication } from '../../hsm/index.js';
import { BufferTooSmallError } from '../../hsm/index.js';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import {
  answerOutput, lengthOnly, parameterUpdateFor, ULONG_MINUS_ONE,
  type LengthOnly, type OutputRequest, type RequestArgs, type RequestCallName, type ResponseArgs,
} from '../../protocol/p11kit/index.js';
import { toHsmTemplate, toWireResults } from './attribute-bridge.js';
import type { SlotView } from './slot-view.js';

export interface CallContext {
  hsm: HsmBackend;
  app: TokenApplication;
  view: SlotView;
  /** Largest output a single call may ask for (the memory budget of one answer). */
  maxOutputBytes: number;
  /** The p11-kit protocol version of the link (0: the client cannot tell an empty output buffer from NULL). */
  version: number;
}

type Handler<N extends RequestCallName> = (args: RequestArgs<N>, ctx: CallContext) => ResponseArgs<N> | Promise<ResponseArgs<N>>;
export type CallTable = { [N in RequestCallName]?: Handler<N> };

const bytes = (value: Buffer | null): Buffer => value ?? Buffer.alloc(0);

function mechanism(value: Mechanism | null): Mechanism {
  if (!value) throw new Pkcs11Error(CKR.ARGUMENTS_BAD, 'no mechanism');
  return value;
}

const unavailable = (n: number | null): number => (n === null ? Number(ULONG_MINUS_ONE) : n);

/**
 * Runs an output-producing call the way p11-kit's server does: a size query or a buffer that is
 * too small is answered CKR_OK with the length only (the client library turns the latter into
 * CKR_BUFFER_TOO_SMALL), and the operation stays active.
 */
async function output(request: OutputRequest, produce: (capacity: number | null) => Promise<Buffer>, version = 2): Promise<Buffer | LengthOnly> {
  // p11-kit before 0.25 (protocol 0) sends an empty buffer exactly as a NULL one and takes a length-only
  // answer to it as CKR_BUFFER_TOO_SMALL (Java ends each cipher with a final into 0 bytes): its query runs
  // as a buffer of 0 bytes, which delivers an empty output and answers any other with its length.
  const capacity = request.query ? (version === 0 ? 0 : null) : request.capacity;
  try {
    const data = await produce(capacity);
    if (capacity === 0 && data.length === 0) return data;
    return answerOutput(request, data);
  } catch (error) {
    if (error instanceof BufferTooSmallError) return lengthOnly(error.required);
    throw error;
  }
}

/** The answer of a call whose response has no arguments. */
const NO_ANSWER = {} as never;

/**
 * C_InitToken's pLabel is 32 blank-padded bytes without a NUL; p11-kit 0.24's client sends it
 * as a C string, so what follows in the caller's memory up to the next NUL can travel too
 * (GnuTLS passes a char[32]). A token reads 32 bytes: so do we, then drop the padding.
 */
function tokenLabel(received: string): string {
  return Buffer.from(received, 'utf8').subarray(0, 32).toString('utf8').replace(/ +$/, '');
}

export const callTable: CallTable = {
  C_Initialize: () => NO_ANSWER,
  C_Finalize: (_args, { app }) => {
    app.finalize();
    return NO_ANSWER;
  },
  C_GetInfo: (_args, { app }) => {
    const info = app.C_GetInfo();
    return {
      cryptokiVersion: info.cryptokiVersion, manufacturerId: info.manufacturerID, flags: info.flags,
      libraryDescription: info.libraryDescription, libraryVersion: info.libraryVersion,
    };
  },
  C_GetSlotList: (args, { view }) => ({ slotList: answerOutput(args.slotList, view.clientSlots()) }),
  C_GetSlotInfo: async (args, { app, view }) => {
    const info = await app.C_GetSlotInfo(view.hsmSlot(args.slotId));
    return {
      slotDescription: info.slotDescription, manufacturerId: info.manufacturerID, flags: info.flags,
      hardwareVersion: info.hardwareVersion, firmwareVersion: info.firmwareVersion,
    };
  },
  C_GetTokenInfo: async (args, { app, view }) => {
    const t = await app.C_GetTokenInfo(view.hsmSlot(args.slotId));
    return {
      label: t.label, manufacturerId: t.manufacturerID, model: t.model, serialNumber: t.serialNumber, flags: t.flags,
      maxSessionCount: t.maxSessionCount, sessionCount: t.sessionCount, maxRwSessionCount: t.maxRwSessionCount,
      rwSessionCount: t.rwSessionCount, maxPinLen: t.maxPinLen, minPinLen: t.minPinLen,
      totalPublicMemory: unavailable(t.totalPublicMemory), freePublicMemory: unavailable(t.freePublicMemory),
      totalPrivateMemory: unavailable(t.totalPrivateMemory), freePrivateMemory: unavailable(t.freePrivateMemory),
      hardwareVersion: t.hardwareVersion, firmwareVersion: t.firmwareVersion, utcTime: t.utcTime,
    };
  },
  C_GetMechanismList: async (args, { app, view }) => ({ mechanismList: answerOutput(args.mechanismList, await app.C_GetMechanismList(view.hsmSlot(args.slotId))) }),
  C_GetMechanismInfo: async (args, { app, view }) => {
    const info = await app.C_GetMechanismInfo(view.hsmSlot(args.slotId), args.type);
    return { minKeySize: info.minKeySize, maxKeySize: info.maxKeySize, flags: info.flags };
  },
  C_InitToken: async (args, { app, view }) => {
    await app.C_InitToken(view.hsmSlot(args.slotId), bytes(args.pin), tokenLabel(args.label));
    return NO_ANSWER;
  },
  C_InitToken2: async (args, { app, view }) => {
    await app.C_InitToken(view.hsmSlot(args.slotId), bytes(args.pin), tokenLabel(args.label));
    return NO_ANSWER;
  },
  C_OpenSession: async (args, { app, view }) => ({ session: await app.C_OpenSession(view.hsmSlot(args.slotId), args.flags) }),
  C_CloseSession: async (args, { app }) => {
    await app.C_CloseSession(args.session);
    return NO_ANSWER;
  },
  C_CloseAllSessions: async (args, { app, view }) => {
    await app.C_CloseAllSessions(view.hsmSlot(args.slotId));
    return NO_ANSWER;
  },
  C_GetSessionInfo: async (args, { app, view }) => {
    const info = await app.C_GetSessionInfo(args.session);
    return { slotId: view.clientSlot(info.slotID), state: info.state, flags: info.flags, deviceError: info.deviceError };
  },
  C_InitPIN: async (args, { app }) => { await app.C_InitPIN(args.session, bytes(args.pin)); return NO_ANSWER; },
  C_SetPIN: async (args, { app }) => { await app.C_SetPIN(args.session, bytes(args.oldPin), bytes(args.newPin)); return NO_ANSWER; },
  C_Login: async (args, { app }) => { await app.C_Login(args.session, args.userType, bytes(args.pin)); return NO_ANSWER; },
  C_Logout: async (args, { app }) => { await app.C_Logout(args.session); return NO_ANSWER; },
  C_CreateObject: async (args, { app }) => ({ object: await app.C_CreateObject(args.session, toHsmTemplate(args.template)) }),
  C_CopyObject: async (args, { app }) => ({ object: await app.C_CopyObject(args.session, args.object, toHsmTemplate(args.template)) }),
  C_DestroyObject: async (args, { app }) => { await app.C_DestroyObject(args.session, args.object); return NO_ANSWER; },
  C_GetAttributeValue: async (args, { app }) => {
    const readout = await app.C_GetAttributeValue(args.session, args.object,
      args.template.map((r) => ({ type: r.type, length: r.length === 0 ? null : r.length })));
    // These three travel inside a normal answer; any other failure is an ERROR message.
    if (![CKR.OK, CKR.ATTRIBUTE_SENSITIVE, CKR.ATTRIBUTE_TYPE_INVALID, CKR.BUFFER_TOO_SMALL].includes(readout.rv as never)) {
      throw new Pkcs11Error(readout.rv);
    }
    return { template: toWireResults(readout.attributes), result: readout.rv };
  },
  C_SetAttributeValue: async (args, { app }) => { await app.C_SetAttributeValue(args.session, args.object, toHsmTemplate(args.template)); return NO_ANSWER; },
  C_FindObjectsInit: async (args, { app }) => { await app.C_FindObjectsInit(args.session, toHsmTemplate(args.template)); return NO_ANSWER; },
  C_FindObjects: async (args, { app }) => {
    if (args.objects.query) return { objects: lengthOnly(0) };
    return { objects: await app.C_FindObjects(args.session, args.objects.capacity) };
  },
  C_FindObjectsFinal: async (args, { app }) => { await app.C_FindObjectsFinal(args.session); return NO_ANSWER; },

  C_EncryptInit: async (args, { app }) => { await app.C_EncryptInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Encrypt: async (args, { app, version }) => ({ encryptedData: await output(args.encryptedData, (c) => app.C_Encrypt(args.session, bytes(args.data), c), version) }),
  C_EncryptUpdate: async (args, { app, version }) => ({ encryptedPart: await output(args.encryptedPart, (c) => app.C_EncryptUpdate(args.session, bytes(args.part), c), version) }),
  C_EncryptFinal: async (args, { app, version }) => ({ lastEncryptedPart: await output(args.lastEncryptedPart, (c) => app.C_EncryptFinal(args.session, c), version) }),
  C_DecryptInit: async (args, { app }) => { await app.C_DecryptInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Decrypt: async (args, { app, version }) => ({ data: await output(args.data, (c) => app.C_Decrypt(args.session, bytes(args.encryptedData), c), version) }),
  C_DecryptUpdate: async (args, { app, version }) => ({ part: await output(args.part, (c) => app.C_DecryptUpdate(args.session, bytes(args.encryptedPart), c), version) }),
  C_DecryptFinal: async (args, { app, version }) => ({ lastPart: await output(args.lastPart, (c) => app.C_DecryptFinal(args.session, c), version) }),
  C_DigestInit: async (args, { app }) => { await app.C_DigestInit(args.session, mechanism(args.mechanism)); return NO_ANSWER; },
  C_Digest: async (args, { app }) => ({ digest: await output(args.digest, (c) => app.C_Digest(args.session, bytes(args.data), c)) }),
  C_DigestUpdate: async (args, { app }) => { await app.C_DigestUpdate(args.session, bytes(args.part)); return NO_ANSWER; },
  C_DigestKey: async (args, { app }) => { await app.C_DigestKey(args.session, args.key); return NO_ANSWER; },
  C_DigestFinal: async (args, { app }) => ({ digest: await output(args.digest, (c) => app.C_DigestFinal(args.session, c)) }),
  C_SignInit: async (args, { app }) => { await app.C_SignInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Sign: async (args, { app }) => ({ signature: await output(args.signature, (c) => app.C_Sign(args.session, bytes(args.data), c)) }),
  C_SignUpdate: async (args, { app }) => { await app.C_SignUpdate(args.session, bytes(args.part)); return NO_ANSWER; },
  C_SignFinal: async (args, { app }) => ({ signature: await output(args.signature, (c) => app.C_SignFinal(args.session, c)) }),
  C_VerifyInit: async (args, { app }) => { await app.C_VerifyInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Verify: async (args, { app }) => { await app.C_Verify(args.session, bytes(args.data), bytes(args.signature)); return NO_ANSWER; },
  C_VerifyUpdate: async (args, { app }) => { await app.C_VerifyUpdate(args.session, bytes(args.part)); return NO_ANSWER; },
  C_VerifyFinal: async (args, { app }) => { await app.C_VerifyFinal(args.session, bytes(args.signature)); return NO_ANSWER; },

  C_GenerateKey: async (args, { app }) => ({ key: await app.C_GenerateKey(args.session, mechanism(args.mechanism), toHsmTemplate(args.template)) }),
  C_GenerateKeyPair: async (args, { app }) => {
    const pair = await app.C_GenerateKeyPair(args.session, mechanism(args.mechanism), toHsmTemplate(args.publicKeyTemplate), toHsmTemplate(args.privateKeyTemplate));
    return { publicKey: pair.publicKey, privateKey: pair.privateKey };
  },
  C_WrapKey: async (args, { app }) => ({
    wrappedKey: await output(args.wrappedKey, (c) => app.C_WrapKey(args.session, mechanism(args.mechanism), args.wrappingKey, args.key, c)),
  }),
  C_UnwrapKey: async (args, { app }) => ({
    key: await app.C_UnwrapKey(args.session, mechanism(args.mechanism), args.unwrappingKey, bytes(args.wrappedKey), toHsmTemplate(args.template)),
  }),
  C_DeriveKey: async (args, { app }) => ({ key: await app.C_DeriveKey(args.session, mechanism(args.mechanism), args.baseKey, toHsmTemplate(args.template)) }),
  // Protocol version 2: the call's result travels inside the answer, with the mechanism
  // parameter back (ECDH parameters have no output fields to update).
  C_DeriveKey2: async (args, { app }) => {
    const derivation = mechanism(args.mechanism);
    const parameterUpdate = parameterUpdateFor(derivation);
    try {
      return { result: CKR.OK, parameterUpdate, key: await app.C_DeriveKey(args.session, derivation, args.baseKey, toHsmTemplate(args.template)) };
    } catch (error) {
      if (!(error instanceof Pkcs11Error)) throw error;
      return { result: error.rv, parameterUpdate, key: 0 };
    }
  },
  C_SeedRandom: async (args, { app }) => { await app.C_SeedRandom(args.session, bytes(args.seed)); return NO_ANSWER; },
  C_GenerateRandom: async (args, { app, maxOutputBytes }) => {
    if (args.randomData.query) return { randomData: lengthOnly(0) };
    if (args.randomData.capacity > maxOutputBytes) throw new Pkcs11Error(CKR.DATA_LEN_RANGE, `more than ${maxOutputBytes} random bytes asked`);
    return { randomData: await app.C_GenerateRandom(args.session, args.randomData.capacity) };
  },
};

// The calls served over p11-kit RPC, one row each: a decoded request becomes a call on the
// client's token-model application, through the client's slots, and its answer the response
// p11-kit's own server would give. NTLS's own calls (keepalive, application ids) are rows too.
// A call without a row is not supported.
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import {
  answerOutput, lengthOnly, parameterUpdateFor, tokenTemplate, wireResults,
  type LengthOnly, type OutputRequest, type RequestArgs, type RequestCallName, type ResponseArgs,
} from '../../protocol/p11kit/index.js';
import { BufferTooSmallError, type Application, type ClientSlots } from '../../token/index.js';

export interface ApplicationId {
  major: number;
  minor: number;
}

/** How NTLS's application-id calls change which application a connection uses. */
export interface ApplicationSwitch {
  setApplicationId(id: ApplicationId): void;
  openAccess(id: ApplicationId): void;
  closeAccess(id: ApplicationId): void;
}

export interface CallContext {
  app: Application;
  view: ClientSlots;
  /** Largest output a single call may ask for (the memory budget of one answer). */
  maxOutputBytes: number;
  applications: ApplicationSwitch;
  /** The p11-kit protocol version of the link (0: the client cannot tell an empty output buffer from NULL). */
  version: number;
}

type Handler<N extends RequestCallName> = (args: RequestArgs<N>, ctx: CallContext) => ResponseArgs<N> | Promise<ResponseArgs<N>>;
export type CallTable = { [N in RequestCallName]?: Handler<N> };

const bytes = (value: Buffer | null): Buffer => value ?? Buffer.alloc(0);

/** An attribute's type, flag and length on the wire, beside its value. */
const ATTRIBUTE_OVERHEAD_BYTES = 9;

function mechanism(value: Mechanism | null): Mechanism {
  if (!value) throw new Pkcs11Error(CKR.ARGUMENTS_BAD, 'no mechanism');
  return value;
}

/**
 * Runs an output-producing call the way p11-kit's server does: a size query or a buffer that is
 * too small is answered CKR_OK with the length only (the client library turns the latter into
 * CKR_BUFFER_TOO_SMALL), and the operation stays active.
 */
async function output({ version }: CallContext, request: OutputRequest, produce: (capacity: number | null) => Promise<Buffer>): Promise<Buffer | LengthOnly> {
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

function applicationId(args: { major: number; minor: number }): ApplicationId {
  // The wire's all-ones CK_ULONG decodes as -1: as much out of range as any value over 32 bits.
  const inRange = (part: number) => part >= 0 && part <= 0xffffffff;
  if (!inRange(args.major) || !inRange(args.minor)) throw new Pkcs11Error(CKR.ARGUMENTS_BAD, 'application id out of range');
  return { major: args.major, minor: args.minor };
}

export const callTable: CallTable = {
  C_Initialize: () => NO_ANSWER,
  C_Finalize: (_args, { app }) => {
    app.finalize();
    return NO_ANSWER;
  },
  C_GetInfo: (_args, { app }) => app.C_GetInfo(),
  C_GetSlotList: (args, { view }) => ({ slotList: answerOutput(args.slotList, view.clientSlots()) }),
  C_GetSlotInfo: (args, { app, view }) => app.C_GetSlotInfo(view.modelSlot(args.slotId)),
  C_GetTokenInfo: (args, { app, view }) => app.C_GetTokenInfo(view.modelSlot(args.slotId)),
  C_GetMechanismList: (args, { app, view }) => ({ mechanismList: answerOutput(args.mechanismList, app.C_GetMechanismList(view.modelSlot(args.slotId))) }),
  C_GetMechanismInfo: (args, { app, view }) => app.C_GetMechanismInfo(view.modelSlot(args.slotId), args.type),
  C_InitToken: async (args, { app, view }) => {
    await app.C_InitToken(view.modelSlot(args.slotId), args.pin, tokenLabel(args.label));
    return NO_ANSWER;
  },
  C_InitToken2: async (args, { app, view }) => {
    await app.C_InitToken(view.modelSlot(args.slotId), args.pin, tokenLabel(args.label));
    return NO_ANSWER;
  },
  C_OpenSession: async (args, { app, view }) => ({ session: await app.C_OpenSession(view.modelSlot(args.slotId), args.flags) }),
  C_CloseSession: async (args, { app }) => {
    await app.C_CloseSession(args.session);
    return NO_ANSWER;
  },
  C_CloseAllSessions: async (args, { app, view }) => {
    await app.C_CloseAllSessions(view.modelSlot(args.slotId));
    return NO_ANSWER;
  },
  C_GetSessionInfo: (args, { app, view }) => {
    const info = app.C_GetSessionInfo(args.session);
    return { ...info, slotId: view.clientSlot(info.slotId) };
  },
  // A NULL PIN (no protected authentication path) is CKR_ARGUMENTS_BAD, as SoftHSM2 answers it.
  C_InitPIN: async (args, { app }) => { await app.C_InitPIN(args.session, args.pin); return NO_ANSWER; },
  C_SetPIN: async (args, { app }) => { await app.C_SetPIN(args.session, args.oldPin, args.newPin); return NO_ANSWER; },
  C_Login: async (args, { app }) => { await app.C_Login(args.session, args.userType, args.pin); return NO_ANSWER; },
  C_Logout: async (args, { app }) => { await app.C_Logout(args.session); return NO_ANSWER; },
  C_CreateObject: async (args, { app }) => ({ object: await app.C_CreateObject(args.session, tokenTemplate(args.template)) }),
  C_CopyObject: async (args, { app }) => ({ object: await app.C_CopyObject(args.session, args.object, tokenTemplate(args.template)) }),
  C_DestroyObject: async (args, { app }) => { await app.C_DestroyObject(args.session, args.object); return NO_ANSWER; },
  C_GetObjectSize: async (args, { app }) => ({ size: await app.C_GetObjectSize(args.session, args.object) }),
  C_GetAttributeValue: async (args, { app, maxOutputBytes }) => {
    const readout = await app.C_GetAttributeValue(args.session, args.object,
      args.template.map((r) => ({ type: r.type, length: r.length === 0 ? null : r.length })));
    // These three travel inside a normal answer; any other failure is an ERROR message.
    if (![CKR.OK, CKR.ATTRIBUTE_SENSITIVE, CKR.ATTRIBUTE_TYPE_INVALID, CKR.BUFFER_TOO_SMALL].includes(readout.rv as never)) {
      throw new Pkcs11Error(readout.rv);
    }
    // A template naming one large value many times would make an answer many times the request.
    const answerBytes = readout.attributes.reduce((sum, a) => sum + ATTRIBUTE_OVERHEAD_BYTES + (a.value === null ? 0 : a.length ?? 0), 0);
    if (answerBytes > maxOutputBytes) throw new Pkcs11Error(CKR.DEVICE_MEMORY, `an answer of ${answerBytes} bytes, over ${maxOutputBytes}`);
    return { template: wireResults(readout.attributes), result: readout.rv };
  },
  C_SetAttributeValue: async (args, { app }) => { await app.C_SetAttributeValue(args.session, args.object, tokenTemplate(args.template)); return NO_ANSWER; },
  C_FindObjectsInit: async (args, { app }) => { await app.C_FindObjectsInit(args.session, tokenTemplate(args.template)); return NO_ANSWER; },
  // A NULL array is CKR_ARGUMENTS_BAD, as the module behind p11-kit's server answers it.
  C_FindObjects: async (args, { app }) => ({ objects: await app.C_FindObjects(args.session, args.objects.query ? null : args.objects.capacity) }),
  C_FindObjectsFinal: async (args, { app }) => { await app.C_FindObjectsFinal(args.session); return NO_ANSWER; },

  C_EncryptInit: async (args, { app }) => { await app.C_EncryptInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Encrypt: async (args, ctx) => ({ encryptedData: await output(ctx, args.encryptedData, (c) => ctx.app.C_Encrypt(args.session, bytes(args.data), c)) }),
  C_EncryptUpdate: async (args, ctx) => ({ encryptedPart: await output(ctx, args.encryptedPart, (c) => ctx.app.C_EncryptUpdate(args.session, bytes(args.part), c)) }),
  C_EncryptFinal: async (args, ctx) => ({ lastEncryptedPart: await output(ctx, args.lastEncryptedPart, (c) => ctx.app.C_EncryptFinal(args.session, c)) }),
  C_DecryptInit: async (args, { app }) => { await app.C_DecryptInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Decrypt: async (args, ctx) => ({ data: await output(ctx, args.data, (c) => ctx.app.C_Decrypt(args.session, bytes(args.encryptedData), c)) }),
  C_DecryptUpdate: async (args, ctx) => ({ part: await output(ctx, args.part, (c) => ctx.app.C_DecryptUpdate(args.session, bytes(args.encryptedPart), c)) }),
  C_DecryptFinal: async (args, ctx) => ({ lastPart: await output(ctx, args.lastPart, (c) => ctx.app.C_DecryptFinal(args.session, c)) }),
  C_DigestInit: async (args, { app }) => { await app.C_DigestInit(args.session, mechanism(args.mechanism)); return NO_ANSWER; },
  C_Digest: async (args, ctx) => ({ digest: await output(ctx, args.digest, (c) => ctx.app.C_Digest(args.session, bytes(args.data), c)) }),
  C_DigestUpdate: async (args, { app }) => { await app.C_DigestUpdate(args.session, bytes(args.part)); return NO_ANSWER; },
  C_DigestKey: async (args, { app }) => { await app.C_DigestKey(args.session, args.key); return NO_ANSWER; },
  C_DigestFinal: async (args, ctx) => ({ digest: await output(ctx, args.digest, (c) => ctx.app.C_DigestFinal(args.session, c)) }),
  C_SignInit: async (args, { app }) => { await app.C_SignInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Sign: async (args, ctx) => ({ signature: await output(ctx, args.signature, (c) => ctx.app.C_Sign(args.session, bytes(args.data), c)) }),
  C_SignUpdate: async (args, { app }) => { await app.C_SignUpdate(args.session, bytes(args.part)); return NO_ANSWER; },
  C_SignFinal: async (args, ctx) => ({ signature: await output(ctx, args.signature, (c) => ctx.app.C_SignFinal(args.session, c)) }),
  C_VerifyInit: async (args, { app }) => { await app.C_VerifyInit(args.session, mechanism(args.mechanism), args.key); return NO_ANSWER; },
  C_Verify: async (args, { app }) => { await app.C_Verify(args.session, bytes(args.data), bytes(args.signature)); return NO_ANSWER; },
  C_VerifyUpdate: async (args, { app }) => { await app.C_VerifyUpdate(args.session, bytes(args.part)); return NO_ANSWER; },
  C_VerifyFinal: async (args, { app }) => { await app.C_VerifyFinal(args.session, bytes(args.signature)); return NO_ANSWER; },

  C_GenerateKey: async (args, { app }) => ({ key: await app.C_GenerateKey(args.session, mechanism(args.mechanism), tokenTemplate(args.template)) }),
  C_GenerateKeyPair: async (args, { app }) => app.C_GenerateKeyPair(args.session, mechanism(args.mechanism), tokenTemplate(args.publicKeyTemplate), tokenTemplate(args.privateKeyTemplate)),
  C_WrapKey: async (args, ctx) => ({
    wrappedKey: await output(ctx, args.wrappedKey, (c) => ctx.app.C_WrapKey(args.session, mechanism(args.mechanism), args.wrappingKey, args.key, c)),
  }),
  C_UnwrapKey: async (args, { app }) => ({
    key: await app.C_UnwrapKey(args.session, mechanism(args.mechanism), args.unwrappingKey, bytes(args.wrappedKey), tokenTemplate(args.template)),
  }),
  C_DeriveKey: async (args, { app }) => ({ key: await app.C_DeriveKey(args.session, mechanism(args.mechanism), args.baseKey, tokenTemplate(args.template)) }),
  // Protocol version 2: the call's result travels inside the answer, with the mechanism
  // parameter back (ECDH parameters have no output fields to update).
  C_DeriveKey2: async (args, { app }) => {
    const derivation = mechanism(args.mechanism);
    const parameterUpdate = parameterUpdateFor(derivation);
    try {
      return { result: CKR.OK, parameterUpdate, key: await app.C_DeriveKey(args.session, derivation, args.baseKey, tokenTemplate(args.template)) };
    } catch (error) {
      if (!(error instanceof Pkcs11Error)) throw error;
      return { result: error.rv, parameterUpdate, key: 0 };
    }
  },
  C_SessionCancel: async (args, { app }) => { await app.C_SessionCancel(args.session, args.flags); return NO_ANSWER; },
  C_SeedRandom: async (args, { app }) => { await app.C_SeedRandom(args.session, bytes(args.seed)); return NO_ANSWER; },
  // A NULL buffer is CKR_ARGUMENTS_BAD, as the module behind p11-kit's server answers it.
  C_GenerateRandom: async (args, { app, maxOutputBytes }) => {
    if (!args.randomData.query && args.randomData.capacity > maxOutputBytes) throw new Pkcs11Error(CKR.DATA_LEN_RANGE, `more than ${maxOutputBytes} random bytes asked`);
    return { randomData: await app.C_GenerateRandom(args.session, args.randomData.query ? null : args.randomData.capacity) };
  },

  NTLS_Keepalive: () => NO_ANSWER,
  NTLS_Echo: (args) => ({ body: args.body }),
  NTLS_SetApplicationId: (args, { applications }) => { applications.setApplicationId(applicationId(args)); return NO_ANSWER; },
  NTLS_OpenAccess: (args, { applications }) => { applications.openAccess(applicationId(args)); return NO_ANSWER; },
  NTLS_CloseAccess: (args, { applications }) => { applications.closeAccess(applicationId(args)); return NO_ANSWER; },
  NTLS_KeepObjectHandles: (_args, { app }) => { app.keepObjectHandles(); return NO_ANSWER; },
};

// The PKCS#11 API of one server, shaped like the C API (slots, sessions, objects, mechanisms)
// but with values in and values out: outputs come back as Buffers (length queries and
// CKR_BUFFER_TOO_SMALL are handled here), failures are thrown as Pkcs11Error (`.rv`) or, when
// the link fails, LinkError. Single-part operations send their C_xxxInit and the operation
// together (pipelined), so each costs one round trip.
import { CKF, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { isLengthOnly, outputRequest, type LengthOnly } from '../protocol/p11kit/index.js';
import type { CallChannel, RpcConnection } from './rpc-connection.js';
import { fromWireAttribute, toWireTemplate, type AttributeRead, type TemplateEntry } from './template.js';

export type { LibraryInfo, MechanismInfo, SessionInfo, SlotInfo, TokenInfo } from '../pkcs11/info.js';
import type { LibraryInfo, MechanismInfo, SessionInfo, SlotInfo, TokenInfo } from '../pkcs11/info.js';

export interface KeyPairHandles {
  publicKey: number;
  privateKey: number;
}

/** Room asked for outputs whose size is not known in advance; a larger answer costs one more round trip. */
const DEFAULT_OUTPUT_ROOM = 4096;
/** Room per attribute value in C_GetAttributeValue. */
const ATTRIBUTE_ROOM = 16384;
/** Handles fetched per C_FindObjects. */
const FIND_BATCH = 256;

const pin = (value: string | Buffer): Buffer => (typeof value === 'string' ? Buffer.from(value, 'utf8') : value);

/** Waits for the init; if it failed, its error is the one to report (the operation then fails too). */
async function afterInit<T>(init: Promise<unknown>, operation: Promise<T>): Promise<T> {
  try {
    await init;
  } catch (error) {
    operation.catch(() => undefined);
    throw error;
  }
  return operation;
}

export class Pkcs11Remote<C extends CallChannel = RpcConnection> {
  /** One server's connection, or an HA group's (HaConnection): the same calls either way. */
  constructor(readonly connection: C) {}

  /** The server's (or HA group's) name in the client configuration. */
  get serverName(): string {
    return this.connection.endpoint.name;
  }

  // --- general, slots and tokens ------------------------------------------------------------

  getInfo(): Promise<LibraryInfo> {
    return this.connection.call('C_GetInfo', {});
  }

  /** The slots this client sees: its assigned partitions, numbered 0..n-1. */
  async getSlotList(tokenPresent = true): Promise<number[]> {
    let room = 64;
    for (;;) {
      const { slotList } = await this.connection.call('C_GetSlotList', { tokenPresent: tokenPresent ? 1 : 0, slotList: outputRequest(room) });
      if (!isLengthOnly(slotList)) return slotList;
      room = Math.max(slotList.length, 1);
    }
  }

  getSlotInfo(slotId: number): Promise<SlotInfo> {
    return this.connection.call('C_GetSlotInfo', { slotId });
  }

  getTokenInfo(slotId: number): Promise<TokenInfo> {
    return this.connection.call('C_GetTokenInfo', { slotId });
  }

  async getMechanismList(slotId: number): Promise<number[]> {
    let room = 256;
    for (;;) {
      const { mechanismList } = await this.connection.call('C_GetMechanismList', { slotId, mechanismList: outputRequest(room) });
      if (!isLengthOnly(mechanismList)) return mechanismList;
      room = Math.max(mechanismList.length, 1);
    }
  }

  getMechanismInfo(slotId: number, type: number): Promise<MechanismInfo> {
    return this.connection.call('C_GetMechanismInfo', { slotId, type });
  }

  /** Initialises (or re-initialises, erasing it) the token with the SO PIN. */
  async initToken(slotId: number, soPin: string | Buffer, label: string): Promise<void> {
    await this.connection.call('C_InitToken', { slotId, pin: pin(soPin), label });
  }

  // --- sessions and login ---------------------------------------------------------------------

  async openSession(slotId: number, flags: number = CKF.SERIAL_SESSION | CKF.RW_SESSION): Promise<number> {
    return (await this.connection.call('C_OpenSession', { slotId, flags })).session;
  }

  async closeSession(session: number): Promise<void> {
    await this.connection.call('C_CloseSession', { session });
  }

  async closeAllSessions(slotId: number): Promise<void> {
    await this.connection.call('C_CloseAllSessions', { slotId });
  }

  getSessionInfo(session: number): Promise<SessionInfo> {
    return this.connection.call('C_GetSessionInfo', { session });
  }

  async login(session: number, userType: number, userPin: string | Buffer): Promise<void> {
    await this.connection.call('C_Login', { session, userType, pin: pin(userPin) });
  }

  async logout(session: number): Promise<void> {
    await this.connection.call('C_Logout', { session });
  }

  /** The SO sets (or resets and unlocks) the Crypto Officer's PIN. */
  async initPin(session: number, userPin: string | Buffer): Promise<void> {
    await this.connection.call('C_InitPIN', { session, pin: pin(userPin) });
  }

  async setPin(session: number, oldPin: string | Buffer, newPin: string | Buffer): Promise<void> {
    await this.connection.call('C_SetPIN', { session, oldPin: pin(oldPin), newPin: pin(newPin) });
  }

  // --- objects --------------------------------------------------------------------------------

  async createObject(session: number, template: readonly TemplateEntry[]): Promise<number> {
    return (await this.connection.call('C_CreateObject', { session, template: toWireTemplate(template) })).object;
  }

  async copyObject(session: number, object: number, template: readonly TemplateEntry[] = []): Promise<number> {
    return (await this.connection.call('C_CopyObject', { session, object, template: toWireTemplate(template) })).object;
  }

  async destroyObject(session: number, object: number): Promise<void> {
    await this.connection.call('C_DestroyObject', { session, object });
  }

  /**
   * Reads attributes. Unavailable ones (sensitive, or not attributes of this object) come back
   * with value null rather than failing the whole call, as PKCS#11 reports them per attribute.
   */
  async getAttributeValue(session: number, object: number, types: readonly number[]): Promise<AttributeRead[]> {
    let rooms = types.map(() => ATTRIBUTE_ROOM);
    for (let attempt = 0; ; attempt++) {
      const answer = await this.connection.call('C_GetAttributeValue', {
        session, object, template: types.map((type, i) => ({ type, length: rooms[i]! })),
      });
      if (answer.result === CKR.BUFFER_TOO_SMALL && attempt === 0) {
        rooms = answer.template.map((a, i) => (a.length !== undefined && a.length > 0 && a.value === null ? a.length : rooms[i]!));
        continue;
      }
      if (answer.result !== CKR.OK && answer.result !== CKR.ATTRIBUTE_SENSITIVE && answer.result !== CKR.ATTRIBUTE_TYPE_INVALID) {
        throw new Pkcs11Error(answer.result, 'C_GetAttributeValue');
      }
      return answer.template.map(fromWireAttribute);
    }
  }

  async setAttributeValue(session: number, object: number, template: readonly TemplateEntry[]): Promise<void> {
    await this.connection.call('C_SetAttributeValue', { session, object, template: toWireTemplate(template) });
  }

  /** C_FindObjectsInit, C_FindObjects until done (or `max`), C_FindObjectsFinal. */
  async findObjects(session: number, template: readonly TemplateEntry[] = [], max = Infinity): Promise<number[]> {
    await this.connection.call('C_FindObjectsInit', { session, template: toWireTemplate(template) });
    const found: number[] = [];
    try {
      while (found.length < max) {
        const room = Math.min(FIND_BATCH, max - found.length);
        const { objects } = await this.connection.call('C_FindObjects', { session, objects: outputRequest(room) });
        if (isLengthOnly(objects) || objects.length === 0) break;
        found.push(...objects);
        if (objects.length < room) break;
      }
    } finally {
      await this.connection.call('C_FindObjectsFinal', { session }).catch(() => undefined);
    }
    return found;
  }

  // --- keys -----------------------------------------------------------------------------------

  async generateKey(session: number, mechanism: Mechanism, template: readonly TemplateEntry[]): Promise<number> {
    return (await this.connection.call('C_GenerateKey', { session, mechanism, template: toWireTemplate(template) })).key;
  }

  async generateKeyPair(session: number, mechanism: Mechanism, publicKeyTemplate: readonly TemplateEntry[], privateKeyTemplate: readonly TemplateEntry[]): Promise<KeyPairHandles> {
    return this.connection.call('C_GenerateKeyPair', {
      session, mechanism, publicKeyTemplate: toWireTemplate(publicKeyTemplate), privateKeyTemplate: toWireTemplate(privateKeyTemplate),
    });
  }

  wrapKey(session: number, mechanism: Mechanism, wrappingKey: number, key: number): Promise<Buffer> {
    return this.output(DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_WrapKey', { session, mechanism, wrappingKey, key, wrappedKey: outputRequest(room) })).wrappedKey);
  }

  async unwrapKey(session: number, mechanism: Mechanism, unwrappingKey: number, wrappedKey: Buffer, template: readonly TemplateEntry[]): Promise<number> {
    return (await this.connection.call('C_UnwrapKey', { session, mechanism, unwrappingKey, wrappedKey, template: toWireTemplate(template) })).key;
  }

  async deriveKey(session: number, mechanism: Mechanism, baseKey: number, template: readonly TemplateEntry[]): Promise<number> {
    return (await this.connection.call('C_DeriveKey', { session, mechanism, baseKey, template: toWireTemplate(template) })).key;
  }

  generateRandom(session: number, length: number): Promise<Buffer> {
    if (!Number.isInteger(length) || length < 1) return Promise.reject(new Pkcs11Error(CKR.ARGUMENTS_BAD, `random length ${length}`));
    return this.output(length, async (room) => (await this.connection.call('C_GenerateRandom', { session, randomData: outputRequest(room) })).randomData);
  }

  // --- single-part operations (init and operation pipelined) ----------------------------------

  sign(session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return afterInit(this.connection.call('C_SignInit', { session, mechanism, key }), this.signPart(session, data));
  }

  /** True for a good signature, false for CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE. */
  async verify(session: number, mechanism: Mechanism, key: number, data: Buffer, signature: Buffer): Promise<boolean> {
    try {
      await afterInit(this.connection.call('C_VerifyInit', { session, mechanism, key }), this.connection.call('C_Verify', { session, data, signature }));
      return true;
    } catch (error) {
      if (error instanceof Pkcs11Error && (error.rv === CKR.SIGNATURE_INVALID || error.rv === CKR.SIGNATURE_LEN_RANGE)) return false;
      throw error;
    }
  }

  encrypt(session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return afterInit(this.connection.call('C_EncryptInit', { session, mechanism, key }),
      this.output(data.length + DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_Encrypt', { session, data, encryptedData: outputRequest(room) })).encryptedData));
  }

  decrypt(session: number, mechanism: Mechanism, key: number, encryptedData: Buffer): Promise<Buffer> {
    return afterInit(this.connection.call('C_DecryptInit', { session, mechanism, key }),
      this.output(encryptedData.length + DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_Decrypt', { session, encryptedData, data: outputRequest(room) })).data));
  }

  digest(session: number, mechanism: Mechanism, data: Buffer): Promise<Buffer> {
    return afterInit(this.connection.call('C_DigestInit', { session, mechanism }),
      this.output(128, async (room) => (await this.connection.call('C_Digest', { session, data, digest: outputRequest(room) })).digest));
  }

  // --- multi-part operations ------------------------------------------------------------------

  /** C_SessionCancel (PKCS#11 3.0): ends the session's operations that `flags` names (CKF_SIGN, CKF_FIND_OBJECTS ...). */
  async sessionCancel(session: number, flags: number): Promise<void> {
    await this.connection.call('C_SessionCancel', { session, flags });
  }

  async signInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    await this.connection.call('C_SignInit', { session, mechanism, key });
  }

  async signUpdate(session: number, part: Buffer): Promise<void> {
    await this.connection.call('C_SignUpdate', { session, part });
  }

  signFinal(session: number): Promise<Buffer> {
    return this.output(DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_SignFinal', { session, signature: outputRequest(room) })).signature);
  }

  async verifyInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    await this.connection.call('C_VerifyInit', { session, mechanism, key });
  }

  async verifyUpdate(session: number, part: Buffer): Promise<void> {
    await this.connection.call('C_VerifyUpdate', { session, part });
  }

  async verifyFinal(session: number, signature: Buffer): Promise<void> {
    await this.connection.call('C_VerifyFinal', { session, signature });
  }

  async encryptInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    await this.connection.call('C_EncryptInit', { session, mechanism, key });
  }

  encryptUpdate(session: number, part: Buffer): Promise<Buffer> {
    return this.output(part.length + DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_EncryptUpdate', { session, part, encryptedPart: outputRequest(room) })).encryptedPart);
  }

  encryptFinal(session: number): Promise<Buffer> {
    return this.output(DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_EncryptFinal', { session, lastEncryptedPart: outputRequest(room) })).lastEncryptedPart);
  }

  async decryptInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    await this.connection.call('C_DecryptInit', { session, mechanism, key });
  }

  decryptUpdate(session: number, encryptedPart: Buffer): Promise<Buffer> {
    return this.output(encryptedPart.length + DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_DecryptUpdate', { session, encryptedPart, part: outputRequest(room) })).part);
  }

  decryptFinal(session: number): Promise<Buffer> {
    return this.output(DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_DecryptFinal', { session, lastPart: outputRequest(room) })).lastPart);
  }

  async digestInit(session: number, mechanism: Mechanism): Promise<void> {
    await this.connection.call('C_DigestInit', { session, mechanism });
  }

  async digestUpdate(session: number, part: Buffer): Promise<void> {
    await this.connection.call('C_DigestUpdate', { session, part });
  }

  digestFinal(session: number): Promise<Buffer> {
    return this.output(128, async (room) => (await this.connection.call('C_DigestFinal', { session, digest: outputRequest(room) })).digest);
  }

  private signPart(session: number, data: Buffer): Promise<Buffer> {
    return this.output(DEFAULT_OUTPUT_ROOM, async (room) => (await this.connection.call('C_Sign', { session, data, signature: outputRequest(room) })).signature);
  }

  /**
   * An output call with `room` bytes of room; when the server says the output is longer
   * (a length-only answer: the operation stays active), the call is repeated with that room.
   */
  private async output(room: number, call: (room: number) => Promise<Buffer | LengthOnly>): Promise<Buffer> {
    let answer = await call(Math.max(1, room));
    if (isLengthOnly(answer)) {
      if (answer.length <= room) throw new Pkcs11Error(CKR.DEVICE_ERROR, `length-only answer of ${answer.length} bytes for ${room} bytes of room`);
      answer = await call(answer.length);
      if (isLengthOnly(answer)) throw new Pkcs11Error(CKR.BUFFER_TOO_SMALL, `${answer.length} bytes needed`);
    }
    return answer;
  }
}

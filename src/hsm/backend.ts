// What the command processor needs of an HSM, whichever holds the keys: the built-in software
// HSM (Hsm / HsmApplication) or a PKCS#11 module behind ntls (PassthroughHsm). Calls that the
// built-in HSM answers at once may take a round trip elsewhere, hence MaybePromise.
import type { Mechanism } from '../pkcs11/mechanism.js';
import type { Template } from './attributes.js';
import type { LibraryInfo, PartitionSummary, SlotInfo, TokenInfo } from './hsm.js';
import type { SessionInfo } from './application.js';
import type { MechanismInfo } from './mechanisms/contract.js';
import type { Capacity } from './output.js';
import type { Pin } from './login.js';
import type { AttributeReadout, AttributeRequest } from './object-calls.js';
import type { KeyPairHandles } from './key-calls.js';

export type MaybePromise<T> = T | Promise<T>;

/** One client application's PKCS#11 calls, on the backend's own slot numbers. */
export interface TokenApplication {
  readonly id: string;
  /** Closes every session of the application (connection gone, C_Finalize). */
  finalize(): void;

  C_GetInfo(): LibraryInfo;
  C_GetSlotInfo(slotId: number): MaybePromise<SlotInfo>;
  C_GetTokenInfo(slotId: number): MaybePromise<TokenInfo>;
  C_GetMechanismList(slotId: number): MaybePromise<number[]>;
  C_GetMechanismInfo(slotId: number, type: number): MaybePromise<MechanismInfo>;
  C_InitToken(slotId: number, soPin: Pin, label: string): Promise<void>;
  C_InitPIN(session: number, pin: Pin): Promise<void>;
  C_SetPIN(session: number, oldPin: Pin, newPin: Pin): Promise<void>;

  C_OpenSession(slotId: number, flags: number): MaybePromise<number>;
  C_CloseSession(session: number): MaybePromise<void>;
  C_CloseAllSessions(slotId: number): MaybePromise<void>;
  C_GetSessionInfo(session: number): MaybePromise<SessionInfo>;
  C_Login(session: number, userType: number, pin: Pin): Promise<void>;
  C_Logout(session: number): Promise<void>;

  C_CreateObject(session: number, template: Template): Promise<number>;
  C_CopyObject(session: number, object: number, template: Template): Promise<number>;
  C_DestroyObject(session: number, object: number): Promise<void>;
  C_GetAttributeValue(session: number, object: number, requests: readonly AttributeRequest[]): Promise<AttributeReadout>;
  C_SetAttributeValue(session: number, object: number, template: Template): Promise<void>;
  C_FindObjectsInit(session: number, template: Template): Promise<void>;
  C_FindObjects(session: number, maxCount: number): Promise<number[]>;
  C_FindObjectsFinal(session: number): Promise<void>;

  C_GenerateKey(session: number, mechanism: Mechanism, template: Template): Promise<number>;
  C_GenerateKeyPair(session: number, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template): Promise<KeyPairHandles>;
  C_WrapKey(session: number, mechanism: Mechanism, wrappingKey: number, key: number, capacity?: Capacity): Promise<Buffer>;
  C_UnwrapKey(session: number, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): Promise<number>;
  C_DeriveKey(session: number, mechanism: Mechanism, baseKey: number, template: Template): Promise<number>;
  C_GenerateRandom(session: number, length: number): Promise<Buffer>;
  C_SeedRandom(session: number, seed: Buffer): Promise<void>;

  C_SignInit(session: number, mechanism: Mechanism, key: number): Promise<void>;
  C_Sign(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer>;
  C_SignUpdate(session: number, data: Buffer): Promise<void>;
  C_SignFinal(session: number, capacity?: Capacity): Promise<Buffer>;
  C_VerifyInit(session: number, mechanism: Mechanism, key: number): Promise<void>;
  C_Verify(session: number, data: Buffer, signature: Buffer): Promise<void>;
  C_VerifyUpdate(session: number, data: Buffer): Promise<void>;
  C_VerifyFinal(session: number, signature: Buffer): Promise<void>;
  C_EncryptInit(session: number, mechanism: Mechanism, key: number): Promise<void>;
  C_Encrypt(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer>;
  C_EncryptUpdate(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer>;
  C_EncryptFinal(session: number, capacity?: Capacity): Promise<Buffer>;
  C_DecryptInit(session: number, mechanism: Mechanism, key: number): Promise<void>;
  C_Decrypt(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer>;
  C_DecryptUpdate(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer>;
  C_DecryptFinal(session: number, capacity?: Capacity): Promise<Buffer>;
  C_DigestInit(session: number, mechanism: Mechanism): Promise<void>;
  C_Digest(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer>;
  C_DigestUpdate(session: number, data: Buffer): Promise<void>;
  C_DigestKey(session: number, key: number): Promise<void>;
  C_DigestFinal(session: number, capacity?: Capacity): Promise<Buffer>;
}

/** An HSM the processor serves: its partitions (slots) and one application per client. */
export interface HsmBackend {
  /** 'software' (built in) or 'pkcs11' (a module behind ntls). */
  readonly kind: 'software' | 'pkcs11';
  application(id: string): TokenApplication;
  listPartitions(): PartitionSummary[];
  /** Open sessions on a partition, all applications together. */
  sessionCount(slotId: number): number;
}

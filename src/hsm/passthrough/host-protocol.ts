// The messages between the daemon and a module host process (one per mapped token). Handles
// travel as numbers; attribute values as the HSM's typed values on the way in and raw bytes on
// the way out (the daemon types them, it knows the attribute kinds).
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type { Template } from '../../pkcs11/attributes.js';
import type { SlotInfo, TokenInfo } from '../../pkcs11/info.js';

export interface HostStart {
  module: string;
  label: string | null;
  serial: string | null;
  /** A user PIN the host logs the token in with at start (keeps it logged in). */
  pin: string | null;
}

export type { ObjectFacts } from '../../token/device.js';
import type { ObjectFacts } from '../../token/device.js';

export interface RawAttribute {
  type: number;
  /** The bytes, or null when the module refused it (rv says why). */
  value: Buffer | null;
  rv: number;
}

/** CK_TOKEN_INFO as the module says it; memory figures are not passed on. */
export type HostTokenInfo = Omit<TokenInfo, 'totalPublicMemory' | 'freePublicMemory' | 'totalPrivateMemory' | 'freePrivateMemory'>;

export type HostSlotInfo = SlotInfo;

export interface HostMechanism {
  type: number;
  minKeySize: number;
  maxKeySize: number;
  flags: number;
}

export interface HostReady {
  slot: number;
  token: HostTokenInfo;
  mechanisms: HostMechanism[];
  loggedIn: boolean;
}

export type CryptoStep = 'encrypt' | 'decrypt' | 'sign' | 'verify' | 'digest';

/** What the daemon asks; each maps to one or a few PKCS#11 calls in the host. */
export interface HostOps {
  start(options: HostStart): HostReady;
  tokenInfo(): HostTokenInfo;
  slotInfo(): HostSlotInfo;
  openSession(flags: number): number;
  closeSession(session: number): void;
  login(userType: number, pin: string, session: number | null): void;
  logout(): void;
  initToken(soPin: string, label: string): void;
  initPin(session: number, pin: string): void;
  setPin(session: number, oldPin: string, newPin: string): void;
  createObject(session: number, template: Template): ObjectFacts;
  copyObject(session: number, object: number, template: Template): ObjectFacts;
  destroyObject(session: number, object: number): void;
  facts(session: number, object: number): ObjectFacts;
  getAttributes(session: number, object: number, types: number[]): RawAttribute[];
  setAttributes(session: number, object: number, template: Template): void;
  findAll(session: number, template: Template): ObjectFacts[];
  generateKey(session: number, mechanism: Mechanism, template: Template): ObjectFacts;
  generateKeyPair(session: number, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template): { publicKey: ObjectFacts; privateKey: ObjectFacts };
  wrapKey(session: number, mechanism: Mechanism, wrappingKey: number, key: number): Buffer;
  unwrapKey(session: number, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): ObjectFacts;
  deriveKey(session: number, mechanism: Mechanism, baseKey: number, template: Template): ObjectFacts;
  cryptoInit(step: CryptoStep, session: number, mechanism: Mechanism, key: number | null): void;
  /** C_Encrypt, C_Decrypt, C_Sign, C_Digest. */
  single(step: CryptoStep, session: number, data: Buffer): Buffer;
  /** C_*Update: bytes out for encrypt/decrypt, none for sign/verify/digest. */
  update(step: CryptoStep, session: number, data: Buffer): Buffer | null;
  /** C_EncryptFinal, C_DecryptFinal, C_SignFinal, C_DigestFinal. */
  final(step: CryptoStep, session: number): Buffer;
  verify(session: number, data: Buffer, signature: Buffer): void;
  verifyFinal(session: number, signature: Buffer): void;
  digestKey(session: number, key: number): void;
  random(session: number, length: number): Buffer;
  seedRandom(session: number, seed: Buffer): void;
}

export type HostOp = keyof HostOps;

/** The host's side: any request may be answered later (the thread pool's calls). */
export type HostImplementation = {
  [K in HostOp]: (...args: Parameters<HostOps[K]>) => ReturnType<HostOps[K]> | Promise<ReturnType<HostOps[K]>>;
};

export interface HostRequest {
  id: number;
  op: HostOp;
  args: unknown[];
}

export type HostResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; rv: number; message: string };

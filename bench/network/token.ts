// What the benchmark does on a token, the same way on either server: generate the three signing
// keys once as token objects, then on every connection log in and find them by label.
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { attr, outputRequest, P11KIT_HANDSHAKE, request, type Attribute } from '../../src/protocol/p11kit/index.js';
import { call, ok, Pkcs11CallError, type RpcChannel } from './rpc-channel.js';

export type KeyName = 'rsa-2048' | 'p-256' | 'ed25519';

export const KEY_LABELS: Record<KeyName, string> = { 'rsa-2048': 'bench-rsa-2048', 'p-256': 'bench-p-256', 'ed25519': 'bench-ed25519' };

const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
/** CKA_EC_PARAMS for Ed25519: PKCS#11 3.0 names the curve (PrintableString) or gives RFC 8410's OID. */
const ED25519_PARAMS = [Buffer.from('130c656477617264733235353139', 'hex'), Buffer.from('06032b6570', 'hex')];

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;

export interface TokenConnection {
  channel: RpcChannel;
  session: number;
  keys: Record<KeyName, number>;
}

export async function initialize(channel: RpcChannel): Promise<number> {
  await ok(channel, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
  const slots = (await ok(channel, request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(16) }))).slotList;
  if (!Array.isArray(slots) || slots.length === 0) throw new Error('no token present');
  return slots[0]!;
}

export async function openUserSession(channel: RpcChannel, slot: number, pin: string): Promise<number> {
  const { session } = await ok(channel, request('C_OpenSession', { slotId: slot, flags: RW }));
  await call(channel, request('C_Login', { session, userType: CKU.USER, pin: Buffer.from(pin) }), [CKR.USER_ALREADY_LOGGED_IN]);
  return session;
}

/** Mechanisms the token offers, to pick what both servers can do. */
export async function mechanismsOf(channel: RpcChannel, slot: number): Promise<Set<number>> {
  const list = (await ok(channel, request('C_GetMechanismList', { slotId: slot, mechanismList: outputRequest(1024) }))).mechanismList;
  return new Set(Array.isArray(list) ? list : []);
}

function keyPairTemplates(label: string, publicExtra: Attribute[]): { publicKeyTemplate: Attribute[]; privateKeyTemplate: Attribute[] } {
  return {
    publicKeyTemplate: [...publicExtra, attr.bool(CKA.TOKEN, true), attr.bool(CKA.VERIFY, true), attr.bytes(CKA.LABEL, label)],
    privateKeyTemplate: [attr.bool(CKA.TOKEN, true), attr.bool(CKA.SIGN, true), attr.bool(CKA.PRIVATE, true), attr.bool(CKA.SENSITIVE, true), attr.bytes(CKA.LABEL, label)],
  };
}

/** The three signing keys, generated once as token objects shared by every connection. */
export async function generateSigningKeys(channel: RpcChannel, session: number): Promise<void> {
  await ok(channel, request('C_GenerateKeyPair', {
    session, mechanism: { type: CKM.RSA_PKCS_KEY_PAIR_GEN, parameter: null },
    ...keyPairTemplates(KEY_LABELS['rsa-2048'], [attr.ulong(CKA.MODULUS_BITS, 2048), attr.bytes(CKA.PUBLIC_EXPONENT, Buffer.from([1, 0, 1]))]),
  }));
  await ok(channel, request('C_GenerateKeyPair', {
    session, mechanism: { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
    ...keyPairTemplates(KEY_LABELS['p-256'], [attr.bytes(CKA.EC_PARAMS, P256_OID)]),
  }));
  let lastError: unknown = null;
  for (const params of ED25519_PARAMS) {
    try {
      await ok(channel, request('C_GenerateKeyPair', {
        session, mechanism: { type: CKM.EC_EDWARDS_KEY_PAIR_GEN, parameter: null },
        ...keyPairTemplates(KEY_LABELS.ed25519, [attr.bytes(CKA.EC_PARAMS, params)]),
      }));
      return;
    } catch (error) {
      if (!(error instanceof Pkcs11CallError)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

export async function findPrivateKey(channel: RpcChannel, session: number, label: string): Promise<number> {
  await ok(channel, request('C_FindObjectsInit', { session, template: [attr.ulong(CKA.CLASS, CKO.PRIVATE_KEY), attr.bytes(CKA.LABEL, label)] }));
  const found = (await ok(channel, request('C_FindObjects', { session, objects: outputRequest(4) }))).objects;
  await ok(channel, request('C_FindObjectsFinal', { session }));
  if (!Array.isArray(found) || found.length !== 1) throw new Error(`private key ${label}: ${Array.isArray(found) ? found.length : 0} found`);
  return found[0]!;
}

/** A connection ready to sign: initialised, logged in, its keys found. */
export async function prepareConnection(channel: RpcChannel, pin: string): Promise<TokenConnection> {
  const slot = await initialize(channel);
  const session = await openUserSession(channel, slot, pin);
  const keys = {} as Record<KeyName, number>;
  for (const name of Object.keys(KEY_LABELS) as KeyName[]) keys[name] = await findPrivateKey(channel, session, KEY_LABELS[name]);
  return { channel, session, keys };
}

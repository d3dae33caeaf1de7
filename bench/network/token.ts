// What the benchmarks do on a token, the same way on every server: generate the three signing
// keys once as token objects, then on every connection log in, find them by label and sign.
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { attr, outputRequest, P11KIT_HANDSHAKE, request, type Attribute } from '../../src/protocol/p11kit/index.js';
import { answerOf, call, encoded, ok, Pkcs11CallError, type RpcChannel } from './rpc-channel.js';

export type KeyName = 'rsa-2048' | 'p-256' | 'ed25519';

export const KEY_LABELS: Record<KeyName, string> = { 'rsa-2048': 'bench-rsa-2048', 'p-256': 'bench-p-256', 'ed25519': 'bench-ed25519' };

const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
/** CKA_EC_PARAMS for Ed25519: PKCS#11 3.0 names the curve (PrintableString) or gives RFC 8410's OID. */
const ED25519_PARAMS = [Buffer.from('130c656477617264733235353139', 'hex'), Buffer.from('06032b6570', 'hex')];

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;

export interface TokenConnection {
  channel: RpcChannel;
  session: number;
  /** The signing keys found on the token (all three, unless the token cannot make one). */
  keys: Partial<Record<KeyName, number>>;
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

/** How one signing key pair is generated: a mechanism and templates, the first that the token takes. */
export interface KeyRecipe {
  key: KeyName;
  mechanism: number;
  templates: Array<{ publicKeyTemplate: Attribute[]; privateKeyTemplate: Attribute[] }>;
}

/** The three signing keys as token objects, whichever way they are generated (over RPC or in process). */
export const KEY_RECIPES: readonly KeyRecipe[] = [
  {
    key: 'rsa-2048', mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN,
    templates: [keyPairTemplates(KEY_LABELS['rsa-2048'], [attr.ulong(CKA.MODULUS_BITS, 2048), attr.bytes(CKA.PUBLIC_EXPONENT, Buffer.from([1, 0, 1]))])],
  },
  { key: 'p-256', mechanism: CKM.EC_KEY_PAIR_GEN, templates: [keyPairTemplates(KEY_LABELS['p-256'], [attr.bytes(CKA.EC_PARAMS, P256_OID)])] },
  { key: 'ed25519', mechanism: CKM.EC_EDWARDS_KEY_PAIR_GEN, templates: ED25519_PARAMS.map((params) => keyPairTemplates(KEY_LABELS.ed25519, [attr.bytes(CKA.EC_PARAMS, params)])) },
];

/**
 * Generates `recipe`'s key pair with the first of its templates that the token takes; an error
 * that `isTokenAnswer` does not accept is thrown at once, else the last one after all were tried.
 */
export async function generateByRecipe<T>(
  recipe: KeyRecipe,
  generate: (templates: KeyRecipe['templates'][number]) => T | Promise<T>,
  isTokenAnswer: (error: unknown) => boolean,
): Promise<T> {
  let lastError: unknown = new Error(`${recipe.key}: no template`);
  for (const templates of recipe.templates) {
    try {
      return await generate(templates);
    } catch (error) {
      if (!isTokenAnswer(error)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

/**
 * The three signing keys, generated once as token objects shared by every connection; a key
 * whose generation mechanism the token does not list (`mechanisms`) is left out.
 */
export async function generateSigningKeys(channel: RpcChannel, session: number, mechanisms: ReadonlySet<number>): Promise<void> {
  for (const recipe of KEY_RECIPES.filter((r) => mechanisms.has(r.mechanism))) {
    await generateByRecipe(recipe, (templates) => ok(channel, request('C_GenerateKeyPair', { session, mechanism: { type: recipe.mechanism, parameter: null }, ...templates })),
      (error) => error instanceof Pkcs11CallError);
  }
}

/** The private key labelled so, or null where there is none. */
export async function findPrivateKey(channel: RpcChannel, session: number, label: string): Promise<number | null> {
  await ok(channel, request('C_FindObjectsInit', { session, template: [attr.ulong(CKA.CLASS, CKO.PRIVATE_KEY), attr.bytes(CKA.LABEL, label)] }));
  const found = (await ok(channel, request('C_FindObjects', { session, objects: outputRequest(4) }))).objects;
  await ok(channel, request('C_FindObjectsFinal', { session }));
  const keys = Array.isArray(found) ? found : [];
  if (keys.length > 1) throw new Error(`private key ${label}: ${keys.length} found`);
  return keys[0] ?? null;
}

/** A connection ready to sign: initialised, logged in, its keys found. */
export async function prepareConnection(channel: RpcChannel, pin: string): Promise<TokenConnection> {
  const slot = await initialize(channel);
  const session = await openUserSession(channel, slot, pin);
  const keys: Partial<Record<KeyName, number>> = {};
  for (const name of Object.keys(KEY_LABELS) as KeyName[]) {
    const key = await findPrivateKey(channel, session, KEY_LABELS[name]);
    if (key !== null) keys[name] = key;
  }
  if (Object.keys(keys).length === 0) throw new Error('no signing key on the token');
  return { channel, session, keys };
}

/** Keys generated once as token objects, through a first connection; answers the token's mechanisms. */
export async function generateKeys(channel: RpcChannel, pin: string): Promise<Set<number>> {
  const slot = await initialize(channel);
  const session = await openUserSession(channel, slot, pin);
  const mechanisms = await mechanismsOf(channel, slot);
  await generateSigningKeys(channel, session, mechanisms);
  return mechanisms;
}

/**
 * A server made ready to sign: the keys generated through a first connection (closed after),
 * then `count` connections opened, `together` at a time, and logged in. Answers the token's
 * mechanisms and the connections.
 */
export async function readyServer(connect: () => Promise<RpcChannel>, pin: string, count: number, together: number): Promise<{ mechanisms: Set<number>; connections: TokenConnection[] }> {
  const setup = await connect();
  let mechanisms: Set<number>;
  try {
    mechanisms = await generateKeys(setup, pin);
  } finally {
    // Closed before the measured connections open: a link held meanwhile would change where the
    // daemon places them (its main process takes a connection unless a worker holds fewer).
    await setup.close();
  }
  return { mechanisms, connections: await connectAll(count, together, connect, pin) };
}

/**
 * `count` connections, `together` at a time. SoftHSM2 processes that C_Initialize and C_Login
 * at the same moment on one token folder trip over each other (CKR_GENERAL_ERROR, or no token
 * present), so the reference's connections are opened one by one.
 */
export async function connectAll(count: number, together: number, connect: () => Promise<RpcChannel>, pin: string): Promise<TokenConnection[]> {
  const connections: TokenConnection[] = [];
  for (let i = 0; i < count; i += together) {
    const batch = await Promise.all(Array.from({ length: Math.min(together, count - i) }, async () => {
      const channel = await connect();
      try {
        return await prepareConnection(channel, pin);
      } catch (error) {
        await channel.close();
        throw error;
      }
    }));
    connections.push(...batch);
  }
  return connections;
}

/** What one signature is: the key, the mechanism and data sent, the signature's length. */
export interface Signing {
  /** For messages, e.g. "P-256 CKM_ECDSA (digest)". */
  what: string;
  key: KeyName;
  mechanism: number;
  data: Buffer;
  signatureBytes: number;
}

/** One signature per call on one connection: C_SignInit and C_Sign sent back to back. */
export function signLane(connection: TokenConnection, signing: Signing): () => Promise<void> {
  const { channel, session } = connection;
  const key = connection.keys[signing.key];
  if (key === undefined) throw new Error(`${signing.what}: the token has no ${signing.key} key`);
  // The requests are the same every time: encoded once; every answer is decoded and checked.
  const init = encoded(request('C_SignInit', { session, mechanism: { type: signing.mechanism, parameter: null }, key }));
  const sign = encoded(request('C_Sign', { session, data: signing.data, signature: outputRequest(512) }));
  return async () => {
    const [initAnswer, signAnswer] = await Promise.all([channel.send(init), channel.send(sign)]);
    answerOf('C_SignInit', initAnswer);
    const signature = answerOf('C_Sign', signAnswer)!.signature;
    if (!Buffer.isBuffer(signature) || signature.length !== signing.signatureBytes) throw new Error(`${signing.what}: bad signature answer`);
  };
}

/**
 * The P-256 signing key pair, generated once as token objects through a first connection (closed
 * after), with a CKA_ID (hex `id`): pkcs11-tool 0.23 picks the key it signs with by --id (it
 * ignores --label there, and takes the first private key when given no id).
 */
export async function generateSigningKeyWithId(connect: () => Promise<RpcChannel>, pin: string, id: string): Promise<void> {
  const setup = await connect();
  try {
    const slot = await initialize(setup);
    const session = await openUserSession(setup, slot, pin);
    const recipe = KEY_RECIPES.find((r) => r.key === 'p-256')!;
    const { publicKeyTemplate, privateKeyTemplate } = recipe.templates[0]!;
    const keyId = attr.bytes(CKA.ID, Buffer.from(id, 'hex'));
    await ok(setup, request('C_GenerateKeyPair', {
      session, mechanism: { type: recipe.mechanism, parameter: null },
      publicKeyTemplate: [...publicKeyTemplate, keyId], privateKeyTemplate: [...privateKeyTemplate, keyId],
    }));
  } finally {
    await setup.close();
  }
}

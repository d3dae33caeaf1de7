// The convenience layer: one logged-in session on one slot, with keys named by label and
// mechanisms chosen from the key when the caller does not name one.
//
//   const token = await client.openToken({ slot: 0, pin: '1234' });
//   const key = await token.generateKeyPair('ec-p256', { label: 'signing' });
//   const signature = await token.sign('signing', data);
//   await token.verify('signing', data, signature);   // true
import type { KeyObject } from 'node:crypto';
import { CKA, CKF, CKO, CKR, CKU, Pkcs11Error, ckmName } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { decryptionFor, defaultCipher, encryptionFor, type CipherName } from './cipher.js';
import { ClientError } from './errors.js';
import { defaultSignMechanism, keyGeneration, type KeyDescription, type KeyGenerationOptions, type KeyType } from './key-specs.js';
import type { Pkcs11Remote } from './pkcs11-remote.js';
import { PUBLIC_KEY_ATTRIBUTES, keyIdOf, publicKeyOf } from './public-key.js';
import type { CallChannel } from './rpc-connection.js';

export interface TokenSessionOptions {
  slot?: number;
  /** Logs in when given. */
  pin?: string;
  /** CKU_USER (the Crypto Officer) unless said otherwise. */
  userType?: number;
  /** Read-write session (default true). */
  readWrite?: boolean;
}

export interface GeneratedKey {
  label: string;
  type: KeyType;
  /** Key pairs: CKA_ID of both keys, in hex (the one given, else the key identifier of the public key). */
  id?: string;
  /** Key pairs: both handles; secret keys: `secretKey`. */
  publicKey?: number;
  privateKey?: number;
  secretKey?: number;
}

export interface ObjectSummary {
  handle: number;
  class: number;
  className: string;
  keyType: number | null;
  label: string;
  id: string;
  token: boolean;
  private: boolean;
}

/** A key given by handle, or by label (the class then follows from the use). */
export type KeyRef = number | string;

const CLASS_NAMES: Record<number, string> = {
  [CKO.DATA]: 'data', [CKO.CERTIFICATE]: 'certificate', [CKO.PUBLIC_KEY]: 'public-key',
  [CKO.PRIVATE_KEY]: 'private-key', [CKO.SECRET_KEY]: 'secret-key',
};

export class TokenSession {
  private constructor(readonly remote: Pkcs11Remote<CallChannel>, readonly slot: number, readonly session: number) {}

  static async open(remote: Pkcs11Remote<CallChannel>, options: TokenSessionOptions = {}): Promise<TokenSession> {
    const slot = options.slot ?? 0;
    const flags = CKF.SERIAL_SESSION | (options.readWrite === false ? 0 : CKF.RW_SESSION);
    const session = await remote.openSession(slot, flags);
    if (options.pin !== undefined) {
      try {
        await remote.login(session, options.userType ?? CKU.USER, options.pin);
      } catch (error) {
        if (!(error instanceof Pkcs11Error && error.rv === CKR.USER_ALREADY_LOGGED_IN)) {
          await remote.closeSession(session).catch(() => undefined);
          throw error;
        }
      }
    }
    return new TokenSession(remote, slot, session);
  }

  async close(): Promise<void> {
    await this.remote.closeSession(this.session);
  }

  async generateKeyPair(type: KeyType, options: KeyGenerationOptions): Promise<GeneratedKey> {
    const plan = keyGeneration(type, options);
    if (!plan.pair) throw new ClientError('NTLS_ERR_ARGUMENT', `${type} is a secret key, not a key pair`, 'use generateKey');
    const pair = await this.remote.generateKeyPair(this.session, plan.mechanism, plan.publicTemplate, plan.privateTemplate);
    let id = options.id;
    if (id === undefined) {
      // Without an id, OpenSSL's pkcs11 engine pairs a private key with any public key or
      // certificate that has no id either: another key's, silently.
      id = keyIdOf(await this.publicKey(pair.publicKey));
      for (const handle of [pair.publicKey, pair.privateKey]) await this.remote.setAttributeValue(this.session, handle, [{ type: CKA.ID, value: id }]);
    }
    return { label: options.label, type, id: id.toString('hex'), publicKey: pair.publicKey, privateKey: pair.privateKey };
  }

  async generateKey(type: KeyType, options: KeyGenerationOptions): Promise<GeneratedKey> {
    const plan = keyGeneration(type, options);
    if (plan.pair) return this.generateKeyPair(type, options);
    const secretKey = await this.remote.generateKey(this.session, plan.mechanism, plan.template);
    return { label: options.label, type, secretKey };
  }

  /** The handle of the first object with this label among `classes` (tried in order). */
  async findKey(label: string, classes: readonly number[]): Promise<number> {
    for (const objectClass of classes) {
      const found = await this.remote.findObjects(this.session, [{ type: CKA.CLASS, value: objectClass }, { type: CKA.LABEL, value: label }], 1);
      if (found.length) return found[0]!;
    }
    const wanted = classes.map((c) => CLASS_NAMES[c] ?? String(c)).join(' or ');
    throw new ClientError('NTLS_ERR_NO_SUCH_OBJECT', `no ${wanted} labelled "${label}" in slot ${this.slot}`, 'see `ntls-client list-objects` (private keys show only when logged in: give the PIN)');
  }

  async listObjects(): Promise<ObjectSummary[]> {
    const handles = await this.remote.findObjects(this.session, []);
    const out: ObjectSummary[] = [];
    for (const handle of handles) {
      const [cls, keyType, label, id, token, priv] = await this.remote.getAttributeValue(this.session, handle,
        [CKA.CLASS, CKA.KEY_TYPE, CKA.LABEL, CKA.ID, CKA.TOKEN, CKA.PRIVATE]);
      const objectClass = typeof cls!.value === 'number' ? cls!.value : -1;
      out.push({
        handle, class: objectClass, className: CLASS_NAMES[objectClass] ?? `0x${objectClass.toString(16)}`,
        keyType: typeof keyType!.value === 'number' ? keyType!.value : null,
        label: Buffer.isBuffer(label!.value) ? label!.value.toString('utf8') : '',
        id: Buffer.isBuffer(id!.value) ? id!.value.toString('hex') : '',
        token: token!.value === true, private: priv!.value === true,
      });
    }
    return out;
  }

  async describeKey(handle: number): Promise<KeyDescription> {
    const [cls, keyType, ecParams] = await this.remote.getAttributeValue(this.session, handle, [CKA.CLASS, CKA.KEY_TYPE, CKA.EC_PARAMS]);
    return {
      handle,
      objectClass: typeof cls!.value === 'number' ? cls!.value : -1,
      keyType: typeof keyType!.value === 'number' ? keyType!.value : -1,
      ecParams: Buffer.isBuffer(ecParams!.value) ? ecParams!.value : undefined,
    };
  }

  async sign(key: KeyRef, data: Buffer, mechanism?: Mechanism): Promise<Buffer> {
    const handle = await this.resolve(key, [CKO.PRIVATE_KEY, CKO.SECRET_KEY]);
    const chosen = mechanism ?? defaultSignMechanism(await this.describeKey(handle));
    return this.remote.sign(this.session, chosen, handle, data).catch((error: unknown) => namingDefault(error, chosen, mechanism));
  }

  async verify(key: KeyRef, data: Buffer, signature: Buffer, mechanism?: Mechanism): Promise<boolean> {
    const handle = await this.resolve(key, [CKO.PUBLIC_KEY, CKO.SECRET_KEY]);
    const chosen = mechanism ?? defaultSignMechanism(await this.describeKey(handle));
    return this.remote.verify(this.session, chosen, handle, data, signature).catch((error: unknown) => namingDefault(error, chosen, mechanism));
  }

  /** Encrypts one message; the IV (if the cipher has one) comes first in the result. */
  async encrypt(key: KeyRef, data: Buffer, options: { cipher?: CipherName; aad?: Buffer } = {}): Promise<Buffer> {
    const handle = await this.resolve(key, [CKO.SECRET_KEY, CKO.PUBLIC_KEY]);
    const cipher = options.cipher ?? defaultCipher((await this.describeKey(handle)).keyType);
    const { mechanism, prefix } = encryptionFor(cipher, options.aad);
    const ciphertext = await this.remote.encrypt(this.session, mechanism, handle, data);
    return prefix.length ? Buffer.concat([prefix, ciphertext]) : ciphertext;
  }

  async decrypt(key: KeyRef, message: Buffer, options: { cipher?: CipherName; aad?: Buffer } = {}): Promise<Buffer> {
    const handle = await this.resolve(key, [CKO.SECRET_KEY, CKO.PRIVATE_KEY]);
    const cipher = options.cipher ?? defaultCipher((await this.describeKey(handle)).keyType);
    const { mechanism, ciphertext } = decryptionFor(cipher, message, options.aad);
    return this.remote.decrypt(this.session, mechanism, handle, ciphertext);
  }

  random(length: number): Promise<Buffer> {
    return this.remote.generateRandom(this.session, length);
  }

  /** A public key as node:crypto sees it (from CKA_PUBLIC_KEY_INFO, or its components: public-key.ts). */
  async publicKey(key: KeyRef): Promise<KeyObject> {
    const handle = await this.resolve(key, [CKO.PUBLIC_KEY]);
    return publicKeyOf(await this.remote.getAttributeValue(this.session, handle, PUBLIC_KEY_ATTRIBUTES));
  }

  async destroy(handle: number): Promise<void> {
    await this.remote.destroyObject(this.session, handle);
  }

  private resolve(key: KeyRef, classes: readonly number[]): Promise<number> {
    return typeof key === 'number' ? Promise.resolve(key) : this.findKey(key, classes);
  }
}

/**
 * A default mechanism the partition does not offer (a passthrough to a module without
 * CKM_ECDSA_SHA256, say) is named, with the option that chooses another.
 */
function namingDefault(error: unknown, chosen: Mechanism, given: Mechanism | undefined): never {
  if (given === undefined && error instanceof Pkcs11Error && error.rv === CKR.MECHANISM_INVALID) {
    throw new Pkcs11Error(CKR.MECHANISM_INVALID, `${ckmName(chosen.type)}, the default for this key; choose one the partition offers with -m (ecdsa signs a digest you give)`, { cause: error });
  }
  throw error;
}

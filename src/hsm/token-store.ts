// A store holding one initialised token (a USB token image, src/tokens/image.ts), made with its
// SO and user PINs: the HSM's front door for what an image is inside.
import { randomBytes } from 'node:crypto';
import { createCredential, type KdfParameters } from '../store/credential.js';
import { DEFAULT_PARTITION_POLICY, HsmStore } from '../store/hsm-store.js';
import { KEY_BYTES } from '../store/seal.js';
import { credentialAad } from './credentials.js';
import { pinBytes } from './pin-policy.js';

export { APPLICATION_ID as STORE_APPLICATION_ID, MAGIC as STORE_MAGIC, SCHEMA_VERSION as STORE_SCHEMA_VERSION } from '../store/schema.js';

export interface TokenStore {
  /** The partition id of the token inside the store. */
  partitionId: number;
  serial: string;
  label: string;
  soPin: string;
  userPin: string;
  kdf: KdfParameters;
}

/** Writes a new store file at `path` (rollback journal: the file alone is the whole token) holding the token. */
export async function createTokenStore(path: string, token: TokenStore): Promise<void> {
  const key = randomBytes(KEY_BYTES);
  const so = await createCredential(pinBytes(token.soPin), key, token.kdf, credentialAad(token.partitionId, 'so'));
  const co = await createCredential(pinBytes(token.userPin), key, token.kdf, credentialAad(token.partitionId, 'co'));
  key.fill(0);
  const store = HsmStore.open(path, { journal: 'delete' });
  try {
    store.insertPartition({
      id: token.partitionId, slotId: 0, serial: token.serial, name: token.label || token.serial, label: token.label, initialized: true,
      credentials: { so, co, cu: null }, failures: { so: 0, co: 0, cu: 0 }, policy: { ...DEFAULT_PARTITION_POLICY },
    });
  } finally {
    store.close();
  }
}

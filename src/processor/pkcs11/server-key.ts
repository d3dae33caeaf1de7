// Keys in hardware: the server's TLS private key as an object of the HSM's administrative
// partition. The partition is made and initialised on first use with the administrative PIN;
// the key is a P-256 pair, sensitive and not extractable, so no client can read it, and stored
// encrypted under the partition's key like every key. The datapath of this same process gets
// the key's PKCS#8 to give to its TLS stack (Node's TLS cannot call out to a signer).
import { createPrivateKey } from 'node:crypto';
import type { SoftwareHsm } from '../../hsm/index.js';
import { CKA, CKF, CKM, CKO, CKR, CKU, Pkcs11Error } from '../../pkcs11/constants.js';
import type { TokenModel } from '../../token/index.js';
import type { ServerKey, ServerKeyRequest } from '../contract.js';

const KEY_LABEL = Buffer.from('ntls-server-key');
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;

export async function serverKeyFromPartition(hsm: SoftwareHsm, model: TokenModel, request: ServerKeyRequest): Promise<ServerKey> {
  const pin = Buffer.from(request.pin);
  let partition = hsm.tokens().find((p) => p.name === request.partition);
  if (!partition) {
    partition = await hsm.createPartition({ name: request.partition, soPin: pin });
    model.mount(partition.slot, hsm, partition.slot);
  }
  const slot = partition.slot;
  const app = model.application(`ntls:server-key:${slot}`);
  try {
    if (!partition.initialized) await app.C_InitToken(slot, pin, request.partition);
    if (!((await app.C_GetTokenInfo(slot)).flags & CKF.USER_PIN_INITIALIZED)) {
      const so = await app.C_OpenSession(slot, RW);
      await app.C_Login(so, CKU.SO, pin);
      await app.C_InitPIN(so, pin);
      await app.C_Logout(so);
      await app.C_CloseSession(so);
    }
    const session = await app.C_OpenSession(slot, RW);
    await loginOrUnlock(hsm, app, slot, session, pin);
    await app.C_FindObjectsInit(session, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.LABEL, value: KEY_LABEL }]);
    const found = await app.C_FindObjects(session, 2);
    await app.C_FindObjectsFinal(session);
    let created = false;
    if (request.regenerate) {
      for (const handle of found) await app.C_DestroyObject(session, handle);
      await app.C_FindObjectsInit(session, [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.LABEL, value: KEY_LABEL }]);
      for (const handle of await app.C_FindObjects(session, 10)) await app.C_DestroyObject(session, handle);
      await app.C_FindObjectsFinal(session);
    }
    let privateHandle = request.regenerate ? undefined : found[0];
    if (privateHandle === undefined) {
      const pair = await app.C_GenerateKeyPair(session, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
        [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: KEY_LABEL }, { type: CKA.VERIFY, value: true }],
        [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: KEY_LABEL }, { type: CKA.SIGN, value: true },
          { type: CKA.SENSITIVE, value: true }, { type: CKA.EXTRACTABLE, value: false }, { type: CKA.PRIVATE, value: true }]);
      privateHandle = pair.privateKey;
      created = true;
    }
    // The HSM's own server reads its key past the PKCS#11 rules that keep it from clients.
    const der = hsm.ownPrivateKey(slot, privateHandle);
    const privateKeyPem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
    der.fill(0);
    return { privateKeyPem, created };
  } finally {
    app.finalize();
  }
}

/**
 * The Crypto Officer's login with the administrative PIN. A Crypto Officer locked by starts with a
 * wrong PIN (a mistyped NTLS_ADMIN_PIN) is unlocked with the right one as SO, which the partition
 * was initialised with: tried only while one more failure would not lock the SO, so a wrong PIN
 * never locks the SO (the right one gets in until wrong starts have brought the SO to one failure
 * from its lock: then the partition stays locked; docs/operations.md).
 */
async function loginOrUnlock(hsm: SoftwareHsm, app: ReturnType<TokenModel['application']>, slot: number, session: number, pin: Buffer): Promise<void> {
  try {
    await app.C_Login(session, CKU.USER, pin);
    return;
  } catch (error) {
    if (!(error instanceof Pkcs11Error && error.rv === CKR.PIN_LOCKED) || hsm.partition(slot).failures('so') + 1 >= hsm.policy.maxFailedLogins) throw error;
    // A wrong PIN: the Crypto Officer's lock is what the start reports.
    await app.C_Login(session, CKU.SO, pin).catch(() => { throw error; });
  }
  await app.C_InitPIN(session, pin);
  await app.C_Logout(session);
  await app.C_Login(session, CKU.USER, pin);
}

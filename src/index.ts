// The ntls package's public API: the client library. Import from 'ntls'.
//
//   import { NtlsClient, CKM } from 'ntls';
//   const client = NtlsClient.fromConfig();                 // ~/.config/ntls-client/client.json
//   const token = await client.openToken({ slot: 0, pin: process.env.NTLS_PIN });
//   const { privateKey } = await token.generateKeyPair('ec-p256', { label: 'app-signing' });
//   const signature = await token.sign(privateKey!, Buffer.from('hello'));
//
// See docs/client.md.

export { NtlsClient, type NtlsClientOptions, type FromConfigOptions, type SlotSummary } from './client/ntls-client.js';
export {
  Pkcs11Remote, type LibraryInfo, type SlotInfo, type TokenInfo, type MechanismInfo, type SessionInfo, type KeyPairHandles,
} from './client/pkcs11-remote.js';
export {
  TokenSession, type TokenSessionOptions, type GeneratedKey, type ObjectSummary, type KeyRef,
} from './client/token-session.js';
export {
  RpcConnection, CLIENT_PROTOCOL_VERSION, type ServerEndpoint, type ClientCredentials, type ConnectionSettings,
} from './client/rpc-connection.js';
export { KEY_TYPES, EC_PARAMS, OAEP_SHA256, isKeyType, keyGeneration, defaultSignMechanism, type KeyType, type KeyGenerationOptions, type KeyDescription } from './client/key-specs.js';
export { CIPHERS, isCipherName, encryptionFor, decryptionFor, type CipherName } from './client/cipher.js';
export { type TemplateEntry, type TemplateValue, type AttributeRead, type AttributeReadValue } from './client/template.js';
export {
  ClientConfigSchema, ServerEntrySchema, CLIENT_CONFIG_FILE, DEFAULT_NTLS_PORT, clientHome, loadClientConfig, saveClientConfig,
  type ClientConfig, type ServerEntry,
} from './client/config.js';
export { loadClientCredentials, loadServerEndpoint, loadServerCertificate } from './client/credentials.js';
export { openClientLog, clientLogFile } from './client/client-log.js';
export { ClientError, type ClientErrorCode } from './client/errors.js';
export { explainFailure, type Failure, type FailureContext } from './client/failure.js';
export { LinkError, openLink, openIdentifiedLink, Link, type LinkOptions, type LinkErrorCode, type LinkStage } from './client/link.js';
export { relayStreams, serveRelay } from './client/relay.js';

// The PKCS#11 vocabulary the API takes and returns.
export { CKA, CKC, CKD, CKF, CKG, CKK, CKM, CKO, CKR, CKS, CKU, CKZ, Pkcs11Error, ckaName, ckmName, ckrName } from './pkcs11/constants.js';
export type { Mechanism, MechanismParameter, GcmParams, CtrParams, Ecdh1DeriveParams, RsaPkcsOaepParams, RsaPkcsPssParams, ByteParams } from './pkcs11/mechanism.js';

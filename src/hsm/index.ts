// The software HSM's front door: what the processor, the tokens and the tests import.

export { SoftwareHsm, HsmAdminError, type HsmOptions, type ClearObject, type PartitionCredential } from './software-hsm.js';
export type { SoftwareSession } from './session.js';
export type { PinPolicy } from './pin-policy.js';
export { DEFAULT_PIN_POLICY, checkPinLength, pinBytes } from './pin-policy.js';
export { credentialAad } from './credentials.js';
export { StoreOpenError } from '../store/errors.js';
export { DEFAULT_KDF, type KdfParameters } from '../store/credential.js';
export { PassthroughDevice, PassthroughStartError, type PassthroughOptions } from './passthrough/passthrough-device.js';
export { createTokenStore, STORE_APPLICATION_ID, STORE_MAGIC, STORE_SCHEMA_VERSION, type TokenStore } from './token-store.js';

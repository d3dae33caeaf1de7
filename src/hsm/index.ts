// The HSM module's public surface: what the command processor and tests import.

export { Hsm, HsmAdminError, type HsmOptions, type LibraryInfo, type SlotInfo, type TokenInfo, type PartitionSummary, type Version } from './hsm.js';
export { HsmApplication, type SessionInfo } from './application.js';
export { CKU_CRYPTO_USER } from './roles.js';
export { BufferTooSmallError, type Capacity } from './output.js';
export type { Attribute, AttributeValue, Template } from './attributes.js';
export type { AttributeRequest, AttributeResult, AttributeReadout } from './object-calls.js';
export type { KeyPairHandles } from './key-calls.js';
export type { PinPolicy } from './pin-policy.js';
export { DEFAULT_PIN_POLICY } from './pin-policy.js';
export { StoreOpenError } from '../store/errors.js';
export { DEFAULT_KDF, type KdfParameters } from '../store/credential.js';
export type { HsmBackend, TokenApplication, MaybePromise } from './backend.js';
export { PassthroughHsm, PassthroughStartError, type PassthroughOptions } from './passthrough/passthrough-hsm.js';

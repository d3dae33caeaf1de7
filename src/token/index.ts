// The token model's front door: what the processor, the tokens and the tests import.
export { TokenModel, type TokenSummary } from './model.js';
export { FindBudget } from './find-budget.js';
export { Application, type KeyPairHandles, type Pin } from './application.js';
export { ClientSlots, type Mount } from './slots.js';
export { BufferTooSmallError, type Capacity } from './output.js';
export { CKU_CRYPTO_USER, roleOfUserType, type Role } from './roles.js';
export type * from './device.js';

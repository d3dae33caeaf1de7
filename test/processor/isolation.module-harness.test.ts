// isolation.suite.ts on SoftHSM2 (the passthrough device) through the in-process harness: with no
// CLI round trip to hide it, a revocation must end the sessions before the next call sees them.
import { isolationSuite } from './isolation.suite.js';

isolationSuite('pkcs11', 'harness');

// isolation.suite.ts on SoftHSM2 behind the PKCS#11 passthrough, in the real daemon over mutual TLS
// (integration). The software HSM's run is isolation.test.ts, through the in-process harness.
import { isolationSuite } from './isolation.suite.js';

isolationSuite('pkcs11', 'daemon');

// protocol-v2.suite.ts on SoftHSM2 behind the PKCS#11 passthrough, in the real daemon over mutual TLS
// (integration). The software HSM's run is protocol-v2.test.ts, through the in-process harness.
import { protocolV2Suite } from './protocol-v2.suite.js';

protocolV2Suite('pkcs11', 'daemon');

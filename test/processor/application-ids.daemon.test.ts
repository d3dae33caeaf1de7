// application-ids.suite.ts in the real daemon over mutual TLS (integration): the whole suite on
// SoftHSM2 behind the PKCS#11 passthrough, and the persistent mapping, whose check reads
// `ntls info show`, on both backends. The software HSM's other cases run in application-ids.test.ts.
import { BACKENDS } from '../support/backends.js';
import { applicationIdSuite, persistentApplicationIdSuite } from './application-ids.suite.js';

for (const kind of BACKENDS) persistentApplicationIdSuite(kind);
applicationIdSuite('pkcs11', 'daemon');

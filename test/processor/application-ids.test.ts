// application-ids.suite.ts on the software HSM, through the in-process harness (unit).
import { applicationIdSuite } from './application-ids.suite.js';

applicationIdSuite('software', 'harness');

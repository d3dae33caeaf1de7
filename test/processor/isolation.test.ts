// isolation.suite.ts on the software HSM, through the in-process harness (unit).
import { isolationSuite } from './isolation.suite.js';

isolationSuite('software', 'harness');

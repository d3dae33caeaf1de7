// protocol-v2.suite.ts on the software HSM, through the in-process harness (unit).
import { protocolV2Suite } from './protocol-v2.suite.js';

protocolV2Suite('software', 'harness');

// The built-in command processor used when the configuration names none. It answers NTLS's
// own requests (keepalive, echo); PKCS#11 calls are answered CKR_FUNCTION_NOT_SUPPORTED
// until the p11-kit processor serves them.

import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import { CKR } from '../pkcs11/constants.js';
import type { Frame } from '../protocol/frame.js';
import type {
  CommandProcessorModule, ConnectionInfo, ProcessorContext, ProcessorInstance, RegistrationEvent,
} from './contract.js';
import { DATAPATH_CONTRACT_VERSION, NtlsCall } from './contract.js';

const PROTOCOL_VERSION = 0;
/** p11-kit's error response: call id 0, signature "u", the CK_RV. */
const RPC_CALL_ERROR = 0;

function errorBody(rv: number): Buffer {
  const body = Buffer.alloc(4 + 4 + 1 + 8);
  body.writeUInt32BE(RPC_CALL_ERROR, 0);
  body.writeUInt32BE(1, 4);
  body.write('u', 8, 'ascii');
  body.writeBigUInt64BE(BigInt(rv), 9);
  return body;
}

class DefaultInstance implements ProcessorInstance {
  constructor(private readonly logger: Logger) {}

  negotiateVersion(clientVersion: number): number {
    return Math.min(clientVersion, PROTOCOL_VERSION);
  }

  async process(request: Frame): Promise<Frame> {
    const callId = request.body.length >= 4 ? request.body.readUInt32BE(0) : -1;
    if (callId === NtlsCall.Keepalive || callId === NtlsCall.Echo) {
      return { callCode: request.callCode, options: Buffer.alloc(0), body: request.body };
    }
    const shown = callId < 0 ? 0 : callId;
    this.logger.log(Catalogue.unsupportedCommand, { command: `0x${shown.toString(16).padStart(8, '0')}` });
    return { callCode: request.callCode, options: Buffer.alloc(0), body: errorBody(CKR.FUNCTION_NOT_SUPPORTED) };
  }

  close(): void {}
}

export function createDefaultProcessor(): CommandProcessorModule {
  let logger: Logger | undefined;
  let workers = 50;
  return {
    cp_get_supported_versions: () => [DATAPATH_CONTRACT_VERSION],
    cp_get_processor_name_p: () => ({ name: 'NTLS Default Command Processor', version: '1.0' }),
    async cp_initialize_p(context: ProcessorContext) {
      logger = context.logger;
      workers = context.config.processor.workers;
    },
    cp_configure: () => ({ workers }),
    cp_client_registration_observer(_event: RegistrationEvent) {},
    cp_server_connected(_connection: ConnectionInfo) {
      if (!logger) throw new Error('command processor used before cp_initialize_p');
      return new DefaultInstance(logger);
    },
    async cp_shutdown() {},
  };
}

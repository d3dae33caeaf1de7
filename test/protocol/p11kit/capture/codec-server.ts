// A minimal p11-kit RPC server made only of the codec under test: it answers the version byte,
// parses frames, decodes requests, and answers with encodeResponse from a fixed fake token (or
// CKR_FUNCTION_NOT_SUPPORTED). Pointing p11-kit-client.so at it shows that the real client
// accepts our encoder's bytes; the decoded requests are recorded.

import net from 'node:net';
import { FrameParser } from '../../../support/frame-parser.js';
import { CKF, CKM, CKR } from '../../../../src/pkcs11/constants.js';
import {
  answerOutput, decodeRequest, encodeErrorResponse, encodeResponse, negotiateVersion, response,
  serializeFrame, type P11KitRequest, type P11KitResponse,
} from '../../../../src/protocol/p11kit/index.js';

export const FAKE = {
  slot: 0x2a,
  library: 'ntls codec test',
  manufacturer: 'ntls project',
  label: 'codec-token',
  model: 'ntls fake',
  serial: '0000c0dec',
  mechanisms: [CKM.RSA_PKCS, CKM.SHA256_RSA_PKCS, CKM.ECDSA, CKM.AES_ECB],
};

export function answer(req: P11KitRequest): P11KitResponse | number {
  switch (req.call) {
    case 'C_Initialize': return response('C_Initialize', {});
    case 'C_Finalize': return response('C_Finalize', {});
    case 'C_GetInfo':
      return response('C_GetInfo', {
        cryptokiVersion: { major: 2, minor: 40 }, manufacturerId: FAKE.manufacturer, flags: 0,
        libraryDescription: FAKE.library, libraryVersion: { major: 0, minor: 1 },
      });
    case 'C_GetSlotList': return response('C_GetSlotList', { slotList: answerOutput(req.args.slotList, [FAKE.slot]) });
    case 'C_GetSlotInfo':
      if (req.args.slotId !== FAKE.slot) return CKR.SLOT_ID_INVALID;
      return response('C_GetSlotInfo', {
        slotDescription: 'ntls fake slot', manufacturerId: FAKE.manufacturer, flags: CKF.TOKEN_PRESENT,
        hardwareVersion: { major: 1, minor: 0 }, firmwareVersion: { major: 1, minor: 0 },
      });
    case 'C_GetTokenInfo':
      if (req.args.slotId !== FAKE.slot) return CKR.SLOT_ID_INVALID;
      return response('C_GetTokenInfo', {
        label: FAKE.label, manufacturerId: FAKE.manufacturer, model: FAKE.model, serialNumber: FAKE.serial,
        flags: CKF.RNG | CKF.LOGIN_REQUIRED | CKF.USER_PIN_INITIALIZED | CKF.TOKEN_INITIALIZED,
        maxSessionCount: 0, sessionCount: 0, maxRwSessionCount: 0, rwSessionCount: 0, maxPinLen: 64, minPinLen: 4,
        totalPublicMemory: -1, freePublicMemory: -1, totalPrivateMemory: -1, freePrivateMemory: -1,
        hardwareVersion: { major: 1, minor: 0 }, firmwareVersion: { major: 1, minor: 0 }, utcTime: '',
      });
    case 'C_GetMechanismList':
      if (req.args.slotId !== FAKE.slot) return CKR.SLOT_ID_INVALID;
      return response('C_GetMechanismList', { mechanismList: answerOutput(req.args.mechanismList, FAKE.mechanisms) });
    case 'C_GetMechanismInfo':
      return response('C_GetMechanismInfo', { minKeySize: 256, maxKeySize: 4096, flags: CKF.SIGN | CKF.VERIFY });
    default:
      return CKR.FUNCTION_NOT_SUPPORTED;
  }
}

export interface CodecServer {
  requests: P11KitRequest[];
  close(): Promise<void>;
}

export function startCodecServer(socketPath: string): Promise<CodecServer> {
  const requests: P11KitRequest[] = [];
  const server = net.createServer((sock) => {
    let version: number | null = null;
    const parser = new FrameParser();
    sock.on('data', (chunk: Buffer) => {
      if (version === null) {
        version = negotiateVersion(chunk[0]!);
        sock.write(Buffer.from([version]));
        chunk = chunk.subarray(1);
      }
      const { frames, error } = parser.push(chunk);
      if (error) {
        sock.destroy();
        return;
      }
      for (const f of frames) {
        const req = decodeRequest(f.body, { version });
        if (!req.ok) {
          if (req.error.fatal) {
            sock.destroy();
            return;
          }
          sock.write(serializeFrame({ callCode: f.callCode, options: Buffer.alloc(0), body: encodeErrorResponse(req.error.rv) }));
          continue;
        }
        requests.push(req.value);
        const a = answer(req.value);
        const enc = typeof a === 'number' ? { ok: true as const, value: encodeErrorResponse(a) } : encodeResponse(a);
        sock.write(serializeFrame({ callCode: f.callCode, options: Buffer.alloc(0), body: enc.ok ? enc.value : encodeErrorResponse(CKR.DEVICE_MEMORY) }));
      }
    });
    sock.on('error', () => sock.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve({ requests, close: () => new Promise<void>((r) => server.close(() => r())) }));
  });
}

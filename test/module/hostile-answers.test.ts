// A relay (or a server behind it) that answers what it likes must never make libntls-pkcs11.so
// write past an application's buffer, nor have a malformed answer taken for a good one: such an
// answer is CKR_DEVICE_ERROR and one stderr line naming what was wrong. The fake relay here
// answers each call of fixtures/hostile-check.c as the server does (encoded by ntls's own p11-kit
// codec), except the answer a case replaces.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKR } from '../../src/pkcs11/constants.js';
import { FrameReader } from '../../src/protocol/frame.js';
import {
  answerOutput, attr, decodeRequest, encodeErrorResponse, encodeResponse, serializeFrame, type P11KitRequest, type P11KitResponse,
} from '../../src/protocol/p11kit/index.js';
import { explain, mustSucceed, removeDir, tempDir } from '../support/e2e.js';
import { buildFixture, moduleCheck, ntlsClient } from './support.js';

let work: string;
let folder: string;
let check: string;
let module: string;

/** A request's answer, or undefined for the server's own. */
type Replace = (request: P11KitRequest) => Buffer | undefined;

function encoded(response: P11KitResponse): Buffer {
  const r = encodeResponse(response);
  if (!r.ok) throw r.error;
  return r.value;
}

/** The answers a server gives the calls of hostile-check. */
function serverAnswer(request: P11KitRequest): Buffer {
  switch (request.call) {
    case 'C_OpenSession': return encoded({ call: request.call, args: { session: 1 } });
    case 'C_GetSessionInfo': return encoded({ call: request.call, args: { slotId: 0, state: 3, flags: 6, deviceError: 0 } });
    case 'C_GetAttributeValue': return encoded({
      call: request.call,
      args: {
        template: request.args.template.map((asked) => asked.type === CKA.WRAP_TEMPLATE
          ? attr.template(asked.type, [attr.bytes(CKA.LABEL, 'abc'), attr.ulong(CKA.VALUE_LEN, 16)])
          : attr.unavailable(asked.type)),
        result: CKR.OK,
      },
    });
    case 'C_GenerateRandom':
      return encoded({ call: request.call, args: { randomData: answerOutput(request.args.randomData, Buffer.alloc(request.args.randomData.capacity, 7)) } });
    case 'C_SignFinal': return encoded({ call: request.call, args: { signature: answerOutput(request.args.signature, Buffer.alloc(8, 1)) } });
    case 'C_GetSlotList': return encoded({ call: request.call, args: { slotList: answerOutput(request.args.slotList, [0]) } });
    case 'C_Initialize':
    case 'C_Finalize':
    case 'C_CloseSession':
      return encoded({ call: request.call, args: {} });
    default: throw new Error(`hostile-check made a call this relay does not answer: ${request.call}`);
  }
}

/** A relay on `path`: echoes the version byte, then answers each frame (`replace` first). */
function fakeRelay(path: string, replace: Replace): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    const frames = new FrameReader(1 << 20);
    let versioned = false;
    socket.on('data', (chunk: Buffer) => {
      frames.push(chunk);
      if (!versioned) {
        const version = frames.takeByte();
        if (version === null) return;
        socket.write(Buffer.from([version]));
        versioned = true;
      }
      for (let frame = frames.next(); frame; frame = frames.next()) {
        const request = decodeRequest(frame.body, { version: 2 });
        if (!request.ok) {
          socket.destroy();
          return;
        }
        const body = replace(request.value) ?? serverAnswer(request.value);
        socket.write(serializeFrame({ callCode: frame.callCode, options: Buffer.alloc(0), body }));
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

const closeServer = (server: Server) => new Promise<void>((r) => server.close(() => r()));

let relays = 0;
/** hostile-check through a fake relay that answers with `replace`. */
async function checkWith(replace: Replace) {
  const socket = join(work, `relay-${relays++}.sock`);
  const server = await fakeRelay(socket, replace);
  try {
    return await moduleCheck(check, module, [], { env: { NTLS_CLIENT_HOME: folder, NTLS_PKCS11_RELAY: `unix:path=${socket}` }, timeoutMs: 30_000 });
  } finally {
    await closeServer(server);
  }
}

/** The answer to `call`, replaced by `answer`. */
const onCall = (call: P11KitRequest['call'], answer: (request: P11KitRequest) => Buffer): Replace =>
  (request) => (request.call === call ? answer(request) : undefined);

beforeAll(async () => {
  work = tempDir('ntls-hostile-');
  folder = join(work, 'client-config');
  mkdirSync(folder);
  writeFileSync(join(folder, 'pkcs11-module.conf'), 'timeout: 5\n');
  check = await buildFixture(join(work, 'bin'), 'hostile-check');
  module = mustSucceed(await ntlsClient(['module-path'])).stdout.trim();
});

afterAll(() => {
  removeDir(work);
});

describe('answers the server gives', () => {
  it('every call CKR_OK, nothing written past a buffer', async () => {
    const { result, values } = await checkWith(() => undefined);
    expect(result.status, explain(result)).toBe(0);
    for (const call of ['initialize', 'open-session', 'wrap-template', 'session-info', 'random', 'sign-final', 'slot-list', 'close-session', 'finalize']) {
      expect(values.get(call), `${call}\n${explain(result)}`).toBe('CKR_OK');
    }
    for (const buffer of ['wrap-template-label', 'random', 'sign-final']) expect(values.get(`${buffer}-guard`)).toBe('intact');
    expect(values.get('sign-final-length')).toBe('8');
    expect(values.get('slot-list-count')).toBe('1');
    expect(result.stderr).toBe('');
  });
});

describe('a nested template (CKA_WRAP_TEMPLATE) answering one attribute twice', () => {
  const twice = (first: ReturnType<typeof attr.bytes>) => onCall('C_GetAttributeValue', () => encoded({
    call: 'C_GetAttributeValue',
    args: {
      // 64 bytes for the caller's 4-byte CKA_LABEL, after an answer that left its entry at CK_UNAVAILABLE_INFORMATION
      template: [attr.template(CKA.WRAP_TEMPLATE, [first, attr.bytes(CKA.LABEL, Buffer.alloc(64, 0x41))])],
      result: CKR.OK,
    },
  }));

  it.each([
    ['unavailable first', attr.unavailable(CKA.LABEL)],
    ['too long for the buffer first', attr.bytes(CKA.LABEL, 'longer than four')],
  ])('%s: CKR_DEVICE_ERROR, nothing written past the caller\'s buffer', async (_name, first) => {
    const { result, values } = await checkWith(twice(first));
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('wrap-template-label-guard'), explain(result)).toBe('intact');
    expect(values.get('wrap-template'), explain(result)).toBe('CKR_DEVICE_ERROR');
    expect(result.stderr).toContain("ntls-pkcs11: C_GetAttributeValue: the server's answer is malformed (an attribute twice in a nested template)");
    expect(values.get('session-info')).toBe('CKR_OK'); // the link goes on
  });
});

describe('bytes after the last value of an answer', () => {
  const withTail = (body: Buffer) => Buffer.concat([body, Buffer.from([0, 0, 0, 0])]);

  it.each([
    ['C_GetSessionInfo', 'session-info'],
    ['C_GenerateRandom', 'random'],
  ] as const)('%s: CKR_DEVICE_ERROR', async (call, name) => {
    const { result, values } = await checkWith(onCall(call, (request) => withTail(serverAnswer(request))));
    expect(result.status, explain(result)).toBe(0);
    expect(values.get(name), explain(result)).toBe('CKR_DEVICE_ERROR');
    expect(result.stderr).toContain(`ntls-pkcs11: ${call}: the server's answer is malformed (bytes after its last value)`);
    expect(values.get('slot-list')).toBe('CKR_OK'); // the link goes on
  });

  it('an ERROR answer: CKR_DEVICE_ERROR, not the CK_RV it carries', async () => {
    const { result, values } = await checkWith(onCall('C_SignFinal', () => withTail(encodeErrorResponse(CKR.OPERATION_NOT_INITIALIZED))));
    expect(values.get('sign-final'), explain(result)).toBe('CKR_DEVICE_ERROR');
    expect(values.get('sign-final-guard')).toBe('intact');
    expect(result.stderr).toContain("ntls-pkcs11: C_SignFinal: the server's answer is malformed (bytes after its last value)");
  });

  it("C_Initialize's answer: the module does not initialise", async () => {
    const { result, values } = await checkWith(onCall('C_Initialize', (request) => withTail(serverAnswer(request))));
    expect(values.get('initialize'), explain(result)).toBe('CKR_DEVICE_ERROR');
    expect(result.stderr).toContain("ntls-pkcs11: C_Initialize: the server's answer is malformed (bytes after its last value)");
  });
});

describe('handles the server may not give', () => {
  it('C_OpenSession answering session handle 0 (CK_INVALID_HANDLE): CKR_DEVICE_ERROR', async () => {
    const { result, values } = await checkWith(onCall('C_OpenSession', () => encoded({ call: 'C_OpenSession', args: { session: 0 } })));
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('open-session'), explain(result)).toBe('CKR_DEVICE_ERROR');
    expect(result.stderr).toContain("ntls-pkcs11: C_OpenSession: the server's answer is malformed (session handle 0, which is no session)");
  });
});

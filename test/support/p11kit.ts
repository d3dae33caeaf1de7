// One PKCS#11 call over a link with the project's codec: for tests that speak p11-kit RPC, over
// a real link (src/client/link.ts) or the in-process processor harness.
import type { Frame } from '../../src/protocol/frame.js';
import { CKR } from '../../src/pkcs11/constants.js';
import {
  decodeResponse, encodeRequest, request, responseRv, P11KIT_HANDSHAKE,
  type P11KitRequest,
} from '../../src/protocol/p11kit/index.js';

/** What a call needs of a link: the client's Link, or the harness's HarnessLink. */
export interface RequestChannel {
  request(body: Buffer): Promise<Frame>;
}

export async function call(l: RequestChannel, req: P11KitRequest, version = 0): Promise<{ rv: number; args: Record<string, unknown> }> {
  const body = encodeRequest(req, { version });
  if (!body.ok) throw body.error;
  const answer = await l.request(body.value);
  const mechanismType = (req.args as { mechanism?: { type: number } | null }).mechanism?.type;
  const decoded = decodeResponse(answer.body, req.call, { version, mechanismType });
  if (!decoded.ok) throw decoded.error;
  return { rv: responseRv(decoded.value), args: decoded.value.args };
}

/** C_Initialize with p11-kit's handshake, as p11-kit-client.so begins. */
export async function initialize(l: RequestChannel): Promise<void> {
  const { rv } = await call(l, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
  if (rv !== CKR.OK) throw new Error(`C_Initialize: ${rv}`);
}

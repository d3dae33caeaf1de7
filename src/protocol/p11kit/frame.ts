// p11-kit RPC framing (p11-kit/rpc-transport.c: p11_rpc_transport_read / _write, rpc_socket_read):
// a 12-byte header of three big-endian uint32 — the call code (a per-connection sequence number
// chosen by the client and echoed back by the server), the options length, the body length —
// then the options bytes, then the body. p11-kit's client puts its module name in the options
// of each request; servers answer with empty options and ignore the client's.
//
// Before all frames the client sends one version byte and the server answers one
// (negotiateVersion in calls.ts); that exchange is not framed and is left to the transport.

// The frame and its reader are the transport's (src/protocol/frame.ts): one of each.

import type { Frame } from '../frame.js';
import { P11KitCodecError, P11KitErrorCode } from './errors.js';

export { serializeFrame, type Frame } from '../frame.js';

/**
 * Client side: an answer frame must echo the call code of the request it answers; p11-kit's
 * client takes code 0 for another protocol ("received invalid rpc header values").
 */
export function checkResponseFrame(frame: Frame, sentCallCode: number): P11KitCodecError | null {
  if (frame.callCode === 0) {
    return new P11KitCodecError(P11KitErrorCode.BadHeader, 'answer frame with call code 0: not a p11-kit peer?', { fatal: true });
  }
  if (frame.callCode !== sentCallCode >>> 0) {
    return new P11KitCodecError(P11KitErrorCode.CallMismatch, `answer frame for call code ${frame.callCode}, ${sentCallCode} was sent`, { fatal: true });
  }
  return null;
}

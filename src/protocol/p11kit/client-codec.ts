// The client's side of one connection, still without sockets: numbers the request frames,
// remembers what each asked (the call, and for C_DeriveKey2 the mechanism, which decoding its
// answer needs), and checks that each answer frame answers a request that was sent.

import { CKR } from '../../pkcs11/constants.js';
import type { CallName } from './calls.js';
import { P11KitCodecError, P11KitErrorCode, fail, ok, type Result } from './errors.js';
import { checkResponseFrame, serializeFrame, type Frame } from './frame.js';
import { decodeResponse, encodeRequest, type P11KitRequest, type P11KitResponse } from './messages.js';

export interface ClientCodecOptions {
  /** The negotiated protocol version. */
  version: number;
  /** First call code (p11-kit's client starts at 16); must not be 0. */
  firstCallCode?: number;
  /** Options bytes sent with every request (p11-kit's client sends its module name). */
  options?: Buffer;
}

export interface EncodedCall {
  callCode: number;
  /** The whole frame, header included. */
  bytes: Buffer;
}

export class P11KitClientCodec {
  readonly version: number;
  private nextCode: number;
  private readonly options: Buffer;
  private readonly pending = new Map<number, { call: CallName; mechanismType: number | undefined }>();

  constructor(opts: ClientCodecOptions) {
    this.version = opts.version;
    this.nextCode = opts.firstCallCode ?? 16;
    this.options = opts.options ?? Buffer.alloc(0);
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  request(req: P11KitRequest): Result<EncodedCall> {
    const body = encodeRequest(req, { version: this.version });
    if (!body.ok) return body;
    const callCode = this.nextCode;
    this.nextCode = this.nextCode >= 0xffffffff ? 1 : this.nextCode + 1;
    const mechanism = (req.args as { mechanism?: { type: number } | null }).mechanism;
    this.pending.set(callCode, { call: req.call, mechanismType: mechanism?.type });
    return ok({ callCode, bytes: serializeFrame({ callCode, options: this.options, body: body.value }) });
  }

  /** Decodes an answer frame; ERROR answers decode as `{ call: 'ERROR', args: { rv } }`. */
  response(frame: Frame): Result<P11KitResponse> {
    const asked = this.pending.get(frame.callCode);
    if (asked === undefined) {
      const bad = checkResponseFrame(frame, -1);
      return fail(bad && bad.code === P11KitErrorCode.BadHeader ? bad
        : new P11KitCodecError(P11KitErrorCode.CallMismatch, `answer to call code ${frame.callCode}, which was not sent`, { fatal: true }));
    }
    this.pending.delete(frame.callCode);
    return decodeResponse(frame.body, asked.call, { version: this.version, mechanismType: asked.mechanismType });
  }
}

/** The CK_RV a client returns for a decoded answer: the ERROR's rv, else CKR_OK. */
export function responseRv(r: P11KitResponse): number {
  return r.call === 'ERROR' ? r.args.rv : CKR.OK;
}

// Message bodies (rpc-message.c: p11_rpc_message_prep / _parse): uint32 call id, the call's
// signature string as a byte array, then one element per signature element. Requests and
// responses are decoded into typed objects whose fields are named by the call table, and
// encoded back from them; the server decodes requests and encodes responses, the client the
// reverse. Every failure is a P11KitCodecError value (errors.ts); nothing throws out of the
// public functions here.
//
// Element encodings:
//   u   CK_ULONG, uint64                          y   one byte
//   v   CK_VERSION, two bytes (major, minor)      s   space-padded string as a byte array of
//   z   string as a byte array (no NUL)               exactly its field's size
//   ay  one byte: 1 = bytes follow as a byte array; 0 = no data (NULL), a uint32 length follows
//   au  one byte as for ay, uint32 count, then (if 1) count uint64
//   fy  uint32: the room the caller has for an output; 0 asks for the length only (NULL
//       buffer); 0xffffffff: a buffer of length 0 (p11-kit 0.25.0 on)
//   fu  uint32: room for that many CK_ULONG; 0 asks for the count only
//   aA  uint32 count, then attributes (attributes.ts)
//   fA  uint32 count, then per attribute uint32 type and uint32 room (0: size query)
//   M   mechanism (mechanisms.ts)                 P   mechanism parameter update (C_DeriveKey2)

import type { LibraryInfo, MechanismInfo, SessionInfo, SlotInfo, TokenInfo } from '../../pkcs11/info.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import { CKR } from '../../pkcs11/constants.js';
import {
  readAttributeArray, readAttributeRequests, writeAttributeArray, writeAttributeRequests,
  type Attribute, type AttributeRequest,
} from './attributes.js';
import {
  CALL_ID, NTLS_CALLS, P11KIT_CALLS, P11KIT_HANDSHAKE, callById, isNtlsCall, signatureElements,
  type CallName, type P11KitCall, type RequestCallName,
} from './calls.js';
import { P11KitCodecError, P11KitErrorCode, fail, ok, type Result } from './errors.js';
import {
  mechanismFraming, readMechanism, readParameterUpdate, writeMechanism,
  mechanismHasNoParameter, type MechanismFraming, type MechanismParameterUpdate,
} from './mechanisms.js';
import { WireReader, WireWriter } from './wire.js';

export interface Version {
  major: number;
  minor: number;
}

/** An `ay`/`au` answer without data: the length only (a size query's answer, or CKR_BUFFER_TOO_SMALL). */
export interface LengthOnly {
  kind: 'length';
  length: number;
}

/** An `fy`/`fu` argument: the output room the caller has. */
export interface OutputRequest {
  /** True when the caller passed a NULL buffer: it asks for the length only. */
  query: boolean;
  /**
   * Bytes (fy) or CK_ULONG items (fu) the caller's buffer holds; 0 when query. A claim of the
   * peer (up to 0xffffffff), not a size to allocate: answers are sized by the data.
   */
  capacity: number;
}

export function lengthOnly(length: number): LengthOnly {
  return { kind: 'length', length };
}

export function isLengthOnly(v: unknown): v is LengthOnly {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !Array.isArray(v) && (v as LengthOnly).kind === 'length';
}

/**
 * The answer a PKCS#11 module gives for output data, as p11-kit's server puts it on the wire:
 * the length only when the caller asked for it or its buffer is too small (the client turns the
 * latter into CKR_BUFFER_TOO_SMALL), else the data.
 */
export function answerOutput<T extends Buffer | number[]>(request: OutputRequest, data: T): T | LengthOnly {
  if (request.query || request.capacity < data.length) return lengthOnly(data.length);
  return data;
}

/** The request-side output room for a caller buffer: null asks for the length. */
export function outputRequest(capacity: number | null): OutputRequest {
  return capacity === null ? { query: true, capacity: 0 } : { query: false, capacity };
}

/** The `P` element to answer for a mechanism: none when p11-kit lists it as parameterless. */
export function parameterUpdateFor(mechanism: Mechanism): MechanismParameterUpdate {
  return mechanismHasNoParameter(mechanism.type) ? null : { hasParameter: mechanism.parameter !== null };
}

// ---------------------------------------------------------------------------------------------
// Types of the decoded messages, derived from the call table.

type Elements<S extends string> = S extends ''
  ? []
  : S extends `${infer P extends 'a' | 'f'}${infer X}${infer R}`
    ? [`${P}${X}`, ...Elements<R>]
    : S extends `${infer C}${infer R}`
      ? [C, ...Elements<R>]
      : [];

type RequestElement<E> = E extends '*' ? Buffer
  : E extends 'u' | 'y' ? number
  : E extends 'ay' ? Buffer | null
  : E extends 'fy' | 'fu' ? OutputRequest
  : E extends 'fA' ? AttributeRequest[]
  : E extends 'aA' ? Attribute[]
  : E extends 'M' ? Mechanism | null
  : E extends 'z' | 's' ? string
  : never;

type ResponseElement<E> = E extends '*' ? Buffer
  : E extends 'u' | 'y' ? number
  : E extends 'ay' ? Buffer | LengthOnly
  : E extends 'au' ? number[] | LengthOnly
  : E extends 'aA' ? Attribute[]
  : E extends 's' ? string
  : E extends 'v' ? Version
  : E extends 'P' ? MechanismParameterUpdate
  : never;

type Zip<F extends readonly string[], E extends readonly string[], Dir extends 'req' | 'resp'> =
  F extends readonly [infer FH extends string, ...infer FR extends readonly string[]]
    ? E extends readonly [infer EH, ...infer ER extends readonly string[]]
      ? { [K in FH]: Dir extends 'req' ? RequestElement<EH> : ResponseElement<EH> } & Zip<FR, ER, Dir>
      : unknown
    : unknown;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type CallOf<N extends CallName> = Extract<P11KitCall, { name: N }>;

export type RequestArgs<N extends RequestCallName> = Simplify<Zip<CallOf<N>['requestFields'], Elements<NonNullable<CallOf<N>['request']>>, 'req'>>;
export type ResponseArgs<N extends CallName> = Simplify<Zip<CallOf<N>['responseFields'], Elements<CallOf<N>['response']>, 'resp'>>;

/** A decoded request; `call` discriminates. */
export type P11KitRequest = { [N in RequestCallName]: { call: N; args: RequestArgs<N> } }[RequestCallName];
/** A decoded response, ERROR (call id 0, carrying the CKR_ `rv`) included. */
export type P11KitResponse = { [N in CallName]: { call: N; args: ResponseArgs<N> } }[CallName];

export type RequestOf<N extends RequestCallName> = Extract<P11KitRequest, { call: N }>;
export type ResponseOf<N extends CallName> = Extract<P11KitResponse, { call: N }>;

export interface CodecOptions {
  /** The negotiated protocol version (picks the mechanism framing). Default 0. */
  version?: number;
}

export interface ResponseDecodeOptions extends CodecOptions {
  /** For C_DeriveKey2: the mechanism type sent, which decides whether a `P` byte is there. */
  mechanismType?: number;
}

// ---------------------------------------------------------------------------------------------
// Per-call layouts, computed once at load.

interface Layout {
  readonly id: number;
  readonly name: CallName;
  readonly signature: Buffer | null;
  readonly elements: readonly string[];
  readonly fields: readonly string[];
}

function layout(c: P11KitCall, dir: 'req' | 'resp'): Layout {
  const sig = dir === 'req' ? c.request : c.response;
  return {
    id: c.id,
    name: c.name,
    signature: sig === null ? null : Buffer.from(sig, 'ascii'),
    elements: sig === null ? [] : signatureElements(sig),
    fields: dir === 'req' ? c.requestFields : c.responseFields,
  };
}

const ALL_CALLS: readonly P11KitCall[] = [...P11KIT_CALLS, ...NTLS_CALLS];
const REQUEST_LAYOUTS: ReadonlyMap<number, Layout> = new Map(ALL_CALLS.map((c) => [c.id, layout(c, 'req')]));
const RESPONSE_LAYOUTS: ReadonlyMap<number, Layout> = new Map(ALL_CALLS.map((c) => [c.id, layout(c, 'resp')]));

/** Sizes of the space-padded strings (`s`), by field name: the CK_*_INFO field sizes. */
export const SPACE_STRING_LENGTH: Readonly<Record<string, number>> = {
  manufacturerId: 32, libraryDescription: 32, slotDescription: 64, label: 32, model: 16, serialNumber: 16, utcTime: 16,
};

function stringLength(field: string): number {
  return SPACE_STRING_LENGTH[field] ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

function readHeader(r: WireReader, layouts: ReadonlyMap<number, Layout>, isRequest: boolean, expected: number | null): Layout {
  let id: number;
  let sig: Buffer | null;
  try {
    id = r.uint32();
  } catch (e) {
    throw asFatal(e, 'call id');
  }
  const l = layouts.get(id);
  if (l === undefined || (isRequest && id === 0)) {
    // p11-kit's server closes the connection here; rv is what a server that answers instead
    // (ntls logs "Client attempted unsupported command") puts in its ERROR message.
    throw new P11KitCodecError(P11KitErrorCode.BadCallId, `bad call id ${id}`, { fatal: true, offset: 0, rv: CKR.FUNCTION_NOT_SUPPORTED });
  }
  if (expected !== null && id !== 0 && id !== expected) {
    throw new P11KitCodecError(P11KitErrorCode.CallMismatch, `answer to call ${id}, call ${expected} was asked`, { fatal: true, offset: 0 });
  }
  try {
    sig = r.byteArray();
  } catch (e) {
    throw asFatal(e, 'signature');
  }
  if (sig === null || l.signature === null || !sig.equals(l.signature)) {
    throw new P11KitCodecError(P11KitErrorCode.SignatureMismatch, `signature of ${l.name} does not match`, { fatal: true, offset: 4 });
  }
  return l;
}

function asFatal(e: unknown, what: string): P11KitCodecError {
  if (e instanceof P11KitCodecError) {
    return new P11KitCodecError(e.code, `${what}: ${e.message}`, { fatal: true, offset: e.offset });
  }
  throw e;
}

function readSpaceString(r: WireReader, field: string): string {
  const at = r.offset;
  const b = r.byteArray();
  const want = stringLength(field);
  if (b === null || b.length !== want) {
    throw new P11KitCodecError(P11KitErrorCode.BadValue, `${field}: ${b === null ? 'no' : b.length} bytes, ${want} expected`, { offset: at });
  }
  return b.toString('utf8').replace(/ +$/, '');
}

function readRequestElement(r: WireReader, e: string, field: string, framing: MechanismFraming): unknown {
  switch (e) {
    case 'u': return r.ulong();
    case 'y': return r.byte();
    case 'ay': {
      const valid = r.byte();
      if (valid === 0) {
        // A NULL pointer with its length (p11-kit reads it since 0.25.0). p11-kit's clients
        // refuse a NULL pointer with a length before sending; behind p11-kit's server the module
        // gets NULL and that length, and answers CKR_ARGUMENTS_BAD.
        const length = r.uint32();
        if (length !== 0) throw new P11KitCodecError(P11KitErrorCode.BadValue, `${field}: a NULL array of ${length} bytes`, { rv: CKR.ARGUMENTS_BAD });
        return null;
      }
      return r.byteArray();
    }
    case 'fy':
    case 'fu': {
      const n = r.uint32();
      if (n === 0) return { query: true, capacity: 0 } satisfies OutputRequest;
      if (n === 0xffffffff && e === 'fy') return { query: false, capacity: 0 } satisfies OutputRequest;
      return { query: false, capacity: n } satisfies OutputRequest;
    }
    case 'fA': return readAttributeRequests(r);
    case 'aA': return readAttributeArray(r);
    case 'M': return readMechanism(r, framing);
    case 'z': {
      const b = r.byteArray();
      return b === null ? '' : b.toString('utf8');
    }
    case 's': return readSpaceString(r, field);
  }
  throw new Error(`no request element ${e}`);
}

function readResponseElement(r: WireReader, e: string, field: string, options: ResponseDecodeOptions): unknown {
  switch (e) {
    case 'u': return r.ulong();
    case 'y': return r.byte();
    case 'v': return { major: r.byte(), minor: r.byte() } satisfies Version;
    case 's': return readSpaceString(r, field);
    case 'ay': {
      const valid = r.byte();
      if (valid === 0) return lengthOnly(r.uint32());
      const b = r.byteArray();
      return b === null ? lengthOnly(0) : b;
    }
    case 'au': {
      const valid = r.byte();
      if (valid === 0) return lengthOnly(r.uint32());
      const n = r.count(8, 'ulong array');
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(r.ulong());
      return out;
    }
    case 'aA': return readAttributeArray(r);
    case 'P': {
      if (options.mechanismType === undefined) {
        throw new P11KitCodecError(P11KitErrorCode.BadValue, 'decoding a mechanism parameter update needs the mechanism type');
      }
      return readParameterUpdate(r, options.mechanismType);
    }
  }
  throw new Error(`no response element ${e}`);
}

function finish(r: WireReader): void {
  if (r.remaining !== 0) {
    throw new P11KitCodecError(P11KitErrorCode.TrailingData, `${r.remaining} bytes after the last argument`, { offset: r.offset });
  }
}

function toError(e: unknown): P11KitCodecError {
  if (e instanceof P11KitCodecError) return e;
  // A RangeError from a Buffer read or any other surprise: still a value, never a crash.
  return new P11KitCodecError(P11KitErrorCode.BadValue, e instanceof Error ? e.message : String(e));
}

/**
 * Decodes a request body (server side). A failure with `fatal` set is one where p11-kit's
 * server drops the connection (unknown call, wrong signature); otherwise p11-kit answers an
 * ERROR message with `rv` (CKR_DEVICE_ERROR for malformed arguments).
 */
const RAW = Buffer.from('*', 'ascii');

export function decodeRequest(body: Buffer, options: CodecOptions = {}): Result<P11KitRequest> {
  const raw = REQUEST_LAYOUTS.get(peekCallId(body));
  if (raw?.signature?.equals(RAW)) return ok({ call: raw.name, args: { body } } as P11KitRequest);
  try {
    const r = new WireReader(body);
    const l = readHeader(r, REQUEST_LAYOUTS, true, null);
    const framing = mechanismFraming(options.version ?? 0);
    const args: Record<string, unknown> = {};
    for (let i = 0; i < l.elements.length; i++) {
      args[l.fields[i]!] = readRequestElement(r, l.elements[i]!, l.fields[i]!, framing);
    }
    finish(r);
    if (l.id === CALL_ID.C_Initialize) {
      const hs = args['handshake'] as Buffer | null;
      if (hs === null || !hs.equals(P11KIT_HANDSHAKE)) {
        // rpc-server.c answers CKR_GENERAL_ERROR ("invalid handshake received from connecting module").
        return fail(new P11KitCodecError(P11KitErrorCode.BadHandshake, 'C_Initialize without the p11-kit handshake', { rv: CKR.GENERAL_ERROR }));
      }
    }
    return ok({ call: l.name, args } as P11KitRequest);
  } catch (e) {
    const error = toError(e);
    // NTLS's own calls answer a malformed request CKR_ARGUMENTS_BAD, not p11-kit's device error.
    if (isNtlsCall(peekCallId(body)) && error.code !== P11KitErrorCode.BadCallId) {
      return fail(new P11KitCodecError(error.code, error.message, { rv: CKR.ARGUMENTS_BAD, offset: error.offset }));
    }
    return fail(error);
  }
}

/**
 * Decodes a response body (client side) to the call `expected`. An ERROR answer decodes as
 * `{ call: 'ERROR', args: { rv } }`; an answer to another call is NTLS_ERR_P11KIT_CALL_MISMATCH.
 */
export function decodeResponse(body: Buffer, expected: CallName, options: ResponseDecodeOptions = {}): Result<P11KitResponse> {
  try {
    const r = new WireReader(body);
    const l = readHeader(r, RESPONSE_LAYOUTS, false, CALL_ID[expected]);
    const args: Record<string, unknown> = {};
    for (let i = 0; i < l.elements.length; i++) {
      args[l.fields[i]!] = readResponseElement(r, l.elements[i]!, l.fields[i]!, options);
    }
    finish(r);
    if (l.id === 0 && (args['rv'] as number) <= 0) {
      // rpc-client.c: "invalid rpc error response: bad error code".
      return fail(new P11KitCodecError(P11KitErrorCode.BadValue, 'ERROR answer carrying CKR_OK', { offset: 0 }));
    }
    return ok({ call: l.name, args } as P11KitResponse);
  } catch (e) {
    return fail(toError(e));
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

function writeSpaceString(w: WireWriter, field: string, s: unknown): void {
  if (typeof s !== 'string') throw new P11KitCodecError(P11KitErrorCode.Unencodable, `${field}: not a string`);
  const size = stringLength(field);
  const b = Buffer.from(s, 'utf8');
  if (b.length > size) throw new P11KitCodecError(P11KitErrorCode.Unencodable, `${field}: ${b.length} bytes, at most ${size}`);
  const out = Buffer.alloc(size, 0x20);
  b.copy(out);
  w.byteArray(out);
}

function need<T>(v: unknown, ok: boolean, field: string, what: string): T {
  if (!ok) throw new P11KitCodecError(P11KitErrorCode.Unencodable, `${field}: ${what} expected`);
  return v as T;
}

function writeRequestElement(w: WireWriter, e: string, field: string, v: unknown, framing: MechanismFraming): void {
  switch (e) {
    case 'u': w.ulong(need<number>(v, typeof v === 'number', field, 'number')); return;
    case 'y': w.byte(need<number>(v, typeof v === 'number', field, 'number')); return;
    case 'ay':
      if (v === null) {
        w.byte(0);
        w.uint32(0);
      } else {
        w.byte(1);
        w.byteArray(need<Buffer>(v, Buffer.isBuffer(v), field, 'Buffer or null'));
      }
      return;
    case 'fy':
    case 'fu': {
      const o = need<OutputRequest>(v, typeof v === 'object' && v !== null && 'query' in v, field, 'OutputRequest');
      if (o.query) w.uint32(0);
      else if (o.capacity === 0) {
        if (e === 'fu') throw new P11KitCodecError(P11KitErrorCode.Unencodable, `${field}: a ulong buffer of 0 items is a count query`);
        w.uint32(0xffffffff);
      } else w.uint32(o.capacity);
      return;
    }
    case 'fA': writeAttributeRequests(w, need<AttributeRequest[]>(v, Array.isArray(v), field, 'array')); return;
    case 'aA': writeAttributeArray(w, need<Attribute[]>(v, Array.isArray(v), field, 'array')); return;
    case 'M': writeMechanism(w, v as Mechanism | null, framing); return;
    case 'z': w.byteArray(Buffer.from(need<string>(v, typeof v === 'string', field, 'string'), 'utf8')); return;
    case 's': writeSpaceString(w, field, v); return;
  }
  throw new Error(`no request element ${e}`);
}

function writeResponseElement(w: WireWriter, e: string, field: string, v: unknown): void {
  switch (e) {
    case 'u': w.ulong(need<number>(v, typeof v === 'number', field, 'number')); return;
    case 'y': w.byte(need<number>(v, typeof v === 'number', field, 'number')); return;
    case 'v': {
      const ver = need<Version>(v, typeof v === 'object' && v !== null, field, 'Version');
      w.byte(ver.major);
      w.byte(ver.minor);
      return;
    }
    case 's': writeSpaceString(w, field, v); return;
    case 'ay':
      if (isLengthOnly(v)) {
        w.byte(0);
        w.uint32(v.length);
      } else {
        w.byte(1);
        w.byteArray(need<Buffer>(v, Buffer.isBuffer(v), field, 'Buffer or LengthOnly'));
      }
      return;
    case 'au':
      if (isLengthOnly(v)) {
        w.byte(0);
        w.uint32(v.length);
      } else {
        const list = need<number[]>(v, Array.isArray(v), field, 'number[] or LengthOnly');
        w.byte(1);
        w.uint32(list.length);
        for (const n of list) w.ulong(n);
      }
      return;
    case 'aA': writeAttributeArray(w, need<Attribute[]>(v, Array.isArray(v), field, 'array')); return;
    case 'P': {
      const u = v as MechanismParameterUpdate;
      if (u !== null) w.byte(u.hasParameter ? 1 : 0);
      return;
    }
  }
  throw new Error(`no response element ${e}`);
}

function encode(l: Layout, args: Record<string, unknown>, write: (w: WireWriter, e: string, f: string, v: unknown) => void): Buffer {
  const w = new WireWriter(64);
  w.uint32(l.id);
  w.byteArray(l.signature);
  for (let i = 0; i < l.elements.length; i++) {
    const f = l.fields[i]!;
    if (!(f in args)) throw new P11KitCodecError(P11KitErrorCode.Unencodable, `${l.name}: missing ${f}`);
    write(w, l.elements[i]!, f, args[f]);
  }
  return w.finish();
}

/** Encodes a request body (client side). */
export function encodeRequest(request: P11KitRequest, options: CodecOptions = {}): Result<Buffer> {
  try {
    const l = REQUEST_LAYOUTS.get(CALL_ID[request.call])!;
    const framing = mechanismFraming(options.version ?? 0);
    return ok(encode(l, request.args as Record<string, unknown>, (w, e, f, v) => writeRequestElement(w, e, f, v, framing)));
  } catch (e) {
    return fail(toError(e));
  }
}

/** Encodes a response body (server side). */
export function encodeResponse(response: P11KitResponse): Result<Buffer> {
  try {
    const l = RESPONSE_LAYOUTS.get(CALL_ID[response.call])!;
    if (l.signature?.equals(RAW)) return ok((response.args as { body: Buffer }).body);
    return ok(encode(l, response.args as Record<string, unknown>, writeResponseElement));
  } catch (e) {
    return fail(toError(e));
  }
}

const ERROR_SIGNATURE = Buffer.from('u', 'ascii');

/** The ERROR answer p11-kit's server sends when a call fails: call id 0, signature "u", the CKR_. */
export function encodeErrorResponse(rv: number): Buffer {
  const w = new WireWriter(21);
  w.uint32(0);
  w.byteArray(ERROR_SIGNATURE);
  w.ulong(rv);
  return w.finish();
}

/** Typed constructors, so callers get the args checked against the call. */
export function request<N extends RequestCallName>(call: N, args: RequestArgs<N>): RequestOf<N> {
  return { call, args } as unknown as RequestOf<N>;
}

export function response<N extends CallName>(call: N, args: ResponseArgs<N>): ResponseOf<N> {
  return { call, args } as unknown as ResponseOf<N>;
}

/**
 * The call id of a request body without decoding the rest (for "unsupported command" logs
 * and statistics); -1 when the body is too short.
 */
export function peekCallId(body: Buffer): number {
  return body.length >= 4 ? body.readUInt32BE(0) : -1;
}

/**
 * The call and the session handle a request names, read from its first bytes only (the call id,
 * the signature, the first argument): a request refused for its size is not kept whole. Null
 * when the call does not take a session first, or the bytes are too few.
 */
export function peekSession(head: Buffer): { call: CallName; session: number } | null {
  const call = callById(peekCallId(head));
  if (!call || call.requestFields[0] !== 'session' || head.length < 8) return null;
  const at = 8 + head.readUInt32BE(4);
  if (head.length < at + 8) return null;
  const session = head.readBigUInt64BE(at);
  return session <= BigInt(Number.MAX_SAFE_INTEGER) ? { call: call.name, session: Number(session) } : null;
}

// The answers of the info calls are the CK_*_INFO types of src/pkcs11/info.ts, field for field.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const infoTypesAgree: [
  Same<ResponseArgs<'C_GetInfo'>, LibraryInfo>, Same<ResponseArgs<'C_GetSlotInfo'>, SlotInfo>, Same<ResponseArgs<'C_GetTokenInfo'>, TokenInfo>,
  Same<ResponseArgs<'C_GetMechanismInfo'>, MechanismInfo>, Same<ResponseArgs<'C_GetSessionInfo'>, SessionInfo>,
] = [true, true, true, true, true];
void infoTypesAgree;

// Attribute read-ahead for the relay. Stock tools read an object's attributes one per call
// (pkcs11-tool -O makes about 17 C_GetAttributeValue calls per key, variable-length attributes
// twice: size, then value), and each call is a round trip to the server. When a program reads
// from the same object twice in a row, the relay asks the server once for that object's public
// attributes, in the program's session, and answers the reads that follow from that answer.
//
// What a program can observe: the reads of one burst (consecutive C_GetAttributeValue calls on
// one session and object, the first and last at most MAX_AGE_MS apart) see the object as it was
// at the start of the burst; without read-ahead they could see it change between two reads of
// the burst. Any other call of the program ends the burst, so its own writes (C_SetAttributeValue,
// C_DestroyObject, C_Logout, C_CloseSession...) are always seen by its next read. Only attributes
// the server returned are answered locally; any other read goes to the server as it came, and
// the answers are built by the same rule as the server's (the first failure is the call's
// return value). Never read ahead: CKA_VALUE and the private key components (sensitive or secret
// by nature), and the attribute templates. `p11-relay --no-read-ahead` turns it off.

import { CKA, CKR } from '../pkcs11/constants.js';
import {
  CALL_ID, decodeRequest, decodeResponse, encodeRequest, encodeResponse, peekCallId, request, response,
  type Attribute, type AttributeRequest,
} from '../protocol/p11kit/index.js';

/** How long a snapshot answers reads after it was asked for. */
export const READ_AHEAD_MAX_AGE_MS = 50;
/** Room asked per attribute in the read-ahead; a longer value is not read ahead. */
const ROOM = 16384;

/** The attributes read ahead: what listings print, none sensitive or secret by nature. */
export const READ_AHEAD_TYPES: readonly number[] = [
  CKA.CLASS, CKA.TOKEN, CKA.PRIVATE, CKA.LABEL, CKA.UNIQUE_ID, CKA.APPLICATION, CKA.OBJECT_ID,
  CKA.CERTIFICATE_TYPE, CKA.ISSUER, CKA.SERIAL_NUMBER, CKA.TRUSTED, CKA.CERTIFICATE_CATEGORY, CKA.CHECK_VALUE,
  CKA.KEY_TYPE, CKA.SUBJECT, CKA.ID, CKA.SENSITIVE, CKA.ENCRYPT, CKA.DECRYPT, CKA.WRAP, CKA.UNWRAP, CKA.SIGN,
  CKA.SIGN_RECOVER, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.DERIVE, CKA.START_DATE, CKA.END_DATE, CKA.MODULUS,
  CKA.MODULUS_BITS, CKA.PUBLIC_EXPONENT, CKA.PUBLIC_KEY_INFO, CKA.VALUE_LEN, CKA.EXTRACTABLE, CKA.LOCAL,
  CKA.NEVER_EXTRACTABLE, CKA.ALWAYS_SENSITIVE, CKA.KEY_GEN_MECHANISM, CKA.MODIFIABLE, CKA.COPYABLE,
  CKA.DESTROYABLE, CKA.EC_PARAMS, CKA.EC_POINT, CKA.ALWAYS_AUTHENTICATE, CKA.WRAP_WITH_TRUSTED,
  CKA.ALLOWED_MECHANISMS,
];

/** What the relay does with a request. */
export type ReadAheadPlan =
  | { kind: 'forward' }
  /** Answer the program with this body; nothing goes to the server. */
  | { kind: 'answer'; body: Buffer }
  /** Send `body` to the server instead; `then` gets its answer and gives the program's, or null to forward the request after all. */
  | { kind: 'fetch'; body: Buffer; then: (answer: Buffer) => Buffer | null };

interface Snapshot {
  session: number;
  object: number;
  takenAt: number;
  attributes: Map<number, Attribute>;
}

/** The read-ahead state of one program's link: its last read, and the snapshot of its current burst. */
export class AttributeReadAhead {
  private snapshot: Snapshot | null = null;
  private lastRead: { session: number; object: number } | null = null;
  /** Counts ended bursts, so that a fetch answered after its burst ended keeps no snapshot. */
  private generation = 0;

  constructor(private readonly maxAgeMs = READ_AHEAD_MAX_AGE_MS, private readonly now: () => number = () => performance.now()) {}

  plan(body: Buffer, version: number): ReadAheadPlan {
    if (peekCallId(body) !== CALL_ID.C_GetAttributeValue) return this.endBurst();
    const decoded = decodeRequest(body, { version });
    if (!decoded.ok || decoded.value.call !== 'C_GetAttributeValue') return this.endBurst();
    const { session, object, template } = decoded.value.args;
    const now = this.now();
    const snapshot = this.snapshot;
    if (snapshot && (snapshot.session !== session || snapshot.object !== object || now - snapshot.takenAt > this.maxAgeMs)) this.snapshot = null;
    const again = this.lastRead?.session === session && this.lastRead.object === object;
    this.lastRead = { session, object };
    if (this.snapshot) {
      const answer = answerFrom(this.snapshot.attributes, template);
      return answer ? { kind: 'answer', body: answer } : { kind: 'forward' };
    }
    if (!again) return { kind: 'forward' };
    const wanted = [...new Set([...template.map((r) => r.type), ...READ_AHEAD_TYPES])];
    const wide = encodeRequest(request('C_GetAttributeValue', { session, object, template: wanted.map((type) => ({ type, length: ROOM })) }), { version });
    if (!wide.ok) return { kind: 'forward' };
    const generation = this.generation;
    return {
      kind: 'fetch',
      body: wide.value,
      then: (answer) => {
        const attributes = availableAttributes(answer, version);
        if (!attributes) return null;
        if (generation === this.generation) this.snapshot = { session, object, takenAt: now, attributes };
        return answerFrom(attributes, template);
      },
    };
  }

  /** A call overlapped another (threads of one program): the burst ends, a fetch in flight keeps no snapshot. */
  interrupt(): void {
    this.endBurst();
  }

  private endBurst(): ReadAheadPlan {
    this.snapshot = null;
    this.lastRead = null;
    this.generation++;
    return { kind: 'forward' };
  }
}

/** The attributes the server returned with a value, or null when the answer is a failure of the call. */
function availableAttributes(body: Buffer, version: number): Map<number, Attribute> | null {
  const decoded = decodeResponse(body, 'C_GetAttributeValue', { version });
  if (!decoded.ok || decoded.value.call !== 'C_GetAttributeValue') return null;
  const { template, result } = decoded.value.args;
  if (![CKR.OK, CKR.ATTRIBUTE_SENSITIVE, CKR.ATTRIBUTE_TYPE_INVALID, CKR.BUFFER_TOO_SMALL].includes(result as never)) return null;
  const attributes = new Map<number, Attribute>();
  for (const attribute of template) {
    if (attribute.value !== null && attribute.length !== undefined && attribute.length >= 0) attributes.set(attribute.type, attribute);
  }
  return attributes;
}

/**
 * The server's answer to `template` from the attributes held, by the server's rule (the token
 * model's C_GetAttributeValue): a size query gets the length, a buffer too small gets
 * CK_UNAVAILABLE_INFORMATION and CKR_BUFFER_TOO_SMALL. Null when an attribute is not held.
 */
function answerFrom(held: ReadonlyMap<number, Attribute>, template: readonly AttributeRequest[]): Buffer | null {
  let result: number = CKR.OK;
  const answered: Attribute[] = [];
  for (const asked of template) {
    const attribute = held.get(asked.type);
    if (!attribute) return null;
    const length = attribute.length!;
    if (asked.length === 0) answered.push({ type: asked.type, value: null, length });
    else if (asked.length < length) {
      if (result === CKR.OK) result = CKR.BUFFER_TOO_SMALL;
      answered.push({ type: asked.type, value: null, length: -1 });
    } else answered.push({ type: asked.type, value: attribute.value, length });
  }
  const encoded = encodeResponse(response('C_GetAttributeValue', { template: answered, result }));
  return encoded.ok ? encoded.value : null;
}

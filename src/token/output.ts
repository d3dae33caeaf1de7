// PKCS#11's output-buffer convention for calls that return bytes (C_Sign, C_Encrypt, C_Digest,
// C_WrapKey ...). The caller says how much room it has:
//   undefined  in-process use: any length, the output is delivered
//   null       length query (pOutput == NULL): the output is computed and kept, not consumed
//   a number   buffer size: too small gives CKR_BUFFER_TOO_SMALL with the length needed
// A later call for the same step and input returns the kept output instead of computing again,
// so a length query followed by the real call gives one signature, not two.

import { createHash } from 'node:crypto';
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { operationMemory } from './operation-memory.js';

/**
 * Output computed for a call whose caller asked for the length only, or gave too small a buffer.
 * It is counted in the owner's share of the operation memory until taken or dropped (a client
 * asking lengths on thousands of sessions must not fill the daemon's memory), and the call is
 * remembered by a digest of its input, not the input itself.
 */
export interface PendingOutput {
  step: string;
  inputDigest: Buffer;
  output: Buffer;
  owner: string | undefined;
}

/** CKR_BUFFER_TOO_SMALL, carrying the length the caller needs (*pulLen). */
export class BufferTooSmallError extends Pkcs11Error {
  constructor(readonly required: number) {
    super(CKR.BUFFER_TOO_SMALL, `${required} bytes needed`);
  }
}

export type Capacity = number | null | undefined;

export interface Holder {
  pending: PendingOutput | null;
}

const digestOf = (input: Buffer): Buffer => createHash('sha256').update(input).digest();

/** Whether a call (its step and input) is the one the pending output was computed for. */
export function isPendingFor(pending: PendingOutput, step: string, input: Buffer): boolean {
  return pending.step === step && pending.inputDigest.equals(digestOf(input));
}

/** Forgets a pending output and gives its bytes back (the operation or session ended, or a new call). */
export function dropPending(holder: Holder): void {
  const pending = holder.pending;
  if (pending === null) return;
  holder.pending = null;
  operationMemory.release(pending.output.length, pending.owner);
}

/**
 * Computes (or reuses) the output of one step for `owner`'s call. Returns it with `delivered`:
 * false for a length query, in which case the operation stays active. Throws
 * BufferTooSmallError when it does not fit, CKR_DEVICE_MEMORY when keeping it would pass the
 * owner's share of the operation memory.
 */
export async function sizedOutput(holder: Holder, owner: string | undefined, step: string, input: Buffer, capacity: Capacity,
  compute: () => Promise<Buffer>): Promise<{ output: Buffer; delivered: boolean }> {
  let output: Buffer;
  const pending = holder.pending;
  if (pending !== null) {
    // An update's input was consumed by the first call; a different call now cannot be honoured.
    if (!isPendingFor(pending, step, input)) throw new Pkcs11Error(CKR.FUNCTION_FAILED, 'call differs from the length query before it');
    output = pending.output;
  } else {
    output = await compute();
  }
  if (capacity === undefined || (capacity !== null && capacity >= output.length)) {
    dropPending(holder);
    return { output, delivered: true };
  }
  if (holder.pending === null) {
    operationMemory.reserve(output.length, owner);
    holder.pending = { step, inputDigest: digestOf(input), output, owner };
  }
  if (capacity === null) return { output, delivered: false };
  throw new BufferTooSmallError(output.length);
}

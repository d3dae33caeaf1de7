// PKCS#11's output-buffer convention for calls that return bytes (C_Sign, C_Encrypt, C_Digest,
// C_WrapKey ...). The caller says how much room it has:
//   undefined  in-process use: any length, the output is delivered
//   null       length query (pOutput == NULL): the output is computed and kept, not consumed
//   a number   buffer size: too small gives CKR_BUFFER_TOO_SMALL with the length needed
// A later call for the same step and input returns the kept output instead of computing again,
// so a length query followed by the real call gives one signature, not two.

import { CKR, Pkcs11Error } from '../pkcs11/constants.js';

/** Output computed for a call whose caller asked for the length only, or gave too small a buffer. */
export interface PendingOutput {
  step: string;
  input: Buffer;
  output: Buffer;
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

/**
 * Computes (or reuses) the output of one step. Returns it with `delivered`: false for a length
 * query, in which case the operation stays active. Throws BufferTooSmallError when it does not fit.
 */
export async function sizedOutput(holder: Holder, step: string, input: Buffer, capacity: Capacity,
  compute: () => Promise<Buffer>): Promise<{ output: Buffer; delivered: boolean }> {
  let output: Buffer;
  const pending = holder.pending;
  if (pending !== null) {
    // An update's input was consumed by the first call; a different call now cannot be honoured.
    if (pending.step !== step || !pending.input.equals(input)) throw new Pkcs11Error(CKR.FUNCTION_FAILED, 'call differs from the length query before it');
    output = pending.output;
  } else {
    output = await compute();
  }
  if (capacity === null) {
    holder.pending = { step, input, output };
    return { output, delivered: false };
  }
  if (capacity !== undefined && capacity < output.length) {
    holder.pending = { step, input, output };
    throw new BufferTooSmallError(output.length);
  }
  holder.pending = null;
  return { output, delivered: true };
}

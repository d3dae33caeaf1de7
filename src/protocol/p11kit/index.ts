// The p11-kit RPC codec: pure functions and a streaming frame parser, no sockets. Shared by the
// command processor (decode requests, encode responses) and the client (the reverse).
// docs/p11kit-rpc.md describes the protocol as implemented here.

export * from './errors.js';
export * from './calls.js';
export * from './frame.js';
export * from './attributes.js';
export * from './mechanisms.js';
export * from './messages.js';
export * from './client-codec.js';
export { WireReader, WireWriter, ULONG_MINUS_ONE, NULL_ARRAY_LENGTH, MAX_ARRAY_LENGTH } from './wire.js';

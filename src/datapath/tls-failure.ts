// Sorting a failed TLS handshake into the guide's cases: a peer that does not speak TLS at all
// (plain TCP, HTTP) is a non-Luna client; a TLS peer whose offer we refuse (weak cipher, old
// protocol) failed to establish a secure channel; a peer that went away failed the handshake.

export type HandshakeFailure = 'non-ntls' | 'refused' | 'aborted';

const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_HTTPS_PROXY_REQUEST',
  'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_RECORD_LENGTH_MISMATCH',
  'ERR_SSL_UNEXPECTED_MESSAGE', 'ERR_SSL_BAD_PACKET_LENGTH', 'ERR_SSL_UNEXPECTED_RECORD',
  'ERR_SSL_LENGTH_MISMATCH', 'ERR_SSL_BAD_RECORD_TYPE', 'ERR_SSL_DECODE_ERROR',
]);
const ABORTED = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);

export function classifyHandshakeFailure(error: NodeJS.ErrnoException): HandshakeFailure {
  const code = error.code ?? '';
  if (NOT_TLS.has(code)) return 'non-ntls';
  if (ABORTED.has(code)) return 'aborted';
  if (/wrong version number|http request|unknown protocol|packet length too long/i.test(error.message)) return 'non-ntls';
  return 'refused';
}

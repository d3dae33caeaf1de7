// Failures of the client side that are neither PKCS#11 answers (Pkcs11Error) nor link failures
// (LinkError): configuration, files, names. Each has a stable code and says what to do.
import { NtlsError } from '../errors/ntls-error.js';

export type ClientErrorCode =
  /** client.json is not valid JSON or does not match the schema. */
  | 'NTLS_ERR_CLIENT_CONFIG'
  /** No client certificate and key are configured yet. */
  | 'NTLS_ERR_NO_CLIENT_CERT'
  /** A server name that client.json does not hold. */
  | 'NTLS_ERR_UNKNOWN_SERVER'
  /** add-server with a name (or host and port) already there, without --replace. */
  | 'NTLS_ERR_SERVER_EXISTS'
  /** The client certificate file is missing or does not hold a certificate. */
  | 'NTLS_ERR_CLIENT_CERT_FILE'
  /** The client certificate is past its end date. */
  | 'NTLS_ERR_CLIENT_CERT_EXPIRED'
  /** The client certificate's start date is still to come (a clock behind, or a certificate from a host whose clock is ahead). */
  | 'NTLS_ERR_CLIENT_CERT_NOT_YET_VALID'
  /** The client key file is missing, unreadable, not a key, or not the certificate's key. */
  | 'NTLS_ERR_CLIENT_KEY_FILE'
  /** The client key file can be read by group or others. */
  | 'NTLS_ERR_KEY_PERMISSIONS'
  /** A server certificate file is missing or does not hold a certificate. */
  | 'NTLS_ERR_SERVER_CERT_FILE'
  /** The server refused this client's certificate (not registered, expired). */
  | 'NTLS_ERR_CLIENT_REFUSED'
  /** Nothing answers at the server's address. */
  | 'NTLS_ERR_SERVER_DOWN'
  /** A command needs a PIN and none was given. */
  | 'NTLS_ERR_NO_PIN'
  /** No object with the label (and class) asked for. */
  | 'NTLS_ERR_NO_SUCH_OBJECT'
  /** An input file that cannot be read, or an output that cannot be written. */
  | 'NTLS_ERR_FILE'
  /** A value the command does not accept (key type, mechanism, slot). */
  | 'NTLS_ERR_ARGUMENT'
  /** The object exists already (create-cert without --force, a label in use). */
  | 'NTLS_ERR_EXISTS'
  /** An HA group name that client.json does not hold. */
  | 'NTLS_ERR_UNKNOWN_GROUP'
  /** A server refused as an HA group member (does not expose the partition, another certificate). */
  | 'NTLS_ERR_HA_MEMBER_REFUSED'
  /** A server that is in use as an HA group member (delete-server). */
  | 'NTLS_ERR_HA_MEMBER_IN_USE';

export class ClientError extends NtlsError {
  declare readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, detail: string, hint?: string, cause?: unknown) {
    super(code, detail, { hint, cause });
  }
}

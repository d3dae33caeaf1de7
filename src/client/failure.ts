// One readable line for anything that went wrong on the client side: what happened, and what to
// do about it. The code is the error's own (NTLS_ERR_..., CKR_...), so scripts can test it.
import { NtlsError } from '../errors/ntls-error.js';
import { CKR, Pkcs11Error, ckrName } from '../pkcs11/constants.js';
import { ClientError } from './errors.js';
import { LinkError } from './link.js';

export interface FailureContext {
  /** The server involved, as configured. */
  server?: { name: string; host: string; port: number };
  /** This client's certificate file and name, for the registration hint. */
  clientCertificateFile?: string;
  clientName?: string;
  /**
   * Set when the server was given by flags (--server host[:port] --server-cert FILE), not by a
   * client.json name: the server certificate file those flags named.
   */
  serverCertificateFile?: string;
}

/** A name `add-server --name` accepts, made from a host (IPv6 colons and the like become dashes). */
export function serverNameFor(host: string): string {
  const name = host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return name || 'server';
}

export interface Failure {
  code: string;
  /** One line, no newline. */
  line: string;
}

/** Exit statuses of `ntls-client`, those of `ntls` (docs/operations.md, "Errors and exit status"). */
export const ClientExit = {
  /** The operation failed or was refused (by the server, the HSM, the network). */
  Failed: 1,
  /** The input cannot be used: a bad argument or option, a missing or unreadable file, an unknown server or group name. */
  BadInput: 2,
} as const;

const BAD_INPUT_CODES = new Set([
  'NTLS_ERR_USAGE', 'NTLS_ERR_ARGUMENT', 'NTLS_ERR_FILE', 'NTLS_ERR_NO_PIN', 'NTLS_ERR_UNKNOWN_SERVER', 'NTLS_ERR_UNKNOWN_GROUP',
  'NTLS_ERR_CLIENT_KEY_FILE', 'NTLS_ERR_SERVER_CERT_FILE', 'NTLS_ERR_CLIENT_CERT_FILE', 'NTLS_ERR_CLIENT_CONFIG',
  'NTLS_ERR_NO_CLIENT_CERT', 'NTLS_ERR_KEY_PERMISSIONS',
]);

/** The exit status for a failure's code. */
export function exitStatusFor(code: string): number {
  return BAD_INPUT_CODES.has(code) ? ClientExit.BadInput : ClientExit.Failed;
}

// TLS alerts a server sends when it does not accept the client's certificate.
const REFUSED_ALERT = /ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|UNSUPPORTED_CERTIFICATE)/;
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** Whether a link failure means the server refused this client's certificate. */
export function isClientRefusal(error: LinkError): boolean {
  if (error.errno && REFUSED_ALERT.test(error.errno)) return true;
  // After the client's side of the handshake, a TLS 1.3 server that does not know the
  // certificate ends the link before the identity exchange.
  return error.stage === 'identity' && (error.code === 'NTLS_ERR_LINK_CLOSED' || error.errno === 'ECONNRESET');
}

export function isServerDown(error: LinkError): boolean {
  return error.stage === 'connect' && error.errno !== undefined && UNREACHABLE.has(error.errno);
}

function serverText(context: FailureContext): string {
  const s = context.server;
  return s ? `server ${s.name} (${s.host}:${s.port})` : 'the server';
}

export function explainFailure(error: unknown, context: FailureContext = {}): Failure {
  const server = serverText(context);
  if (error instanceof ClientError) {
    return { code: error.code, line: `${error.message}${error.hint ? `; ${error.hint}` : ''}` };
  }
  if (error instanceof LinkError) {
    if (error.code === 'NTLS_ERR_SERVER_CERT_MISMATCH') {
      const s = context.server;
      if (s && context.serverCertificateFile !== undefined) {
        const name = serverNameFor(s.host);
        return { code: error.code, line: `${server} presented a certificate other than the one in ${context.serverCertificateFile}, so it is refused; if its administrator regenerated it (\`ntls cert show --pem\` on the server), copy the new one over ${context.serverCertificateFile} (a running relay reads it again), or record the server once with \`ntls-client add-server --name ${name} --host ${s.host} --port ${s.port} --cert NEW.pem\` and use --server ${name}${CHECK_OUT_OF_BAND}` };
      }
      const replace = s ? `ntls-client add-server --name ${s.name} --host ${s.host} --port ${s.port} --cert NEW.pem --replace` : 'ntls-client add-server ... --replace';
      return { code: error.code, line: `${server} presented a certificate other than the one added for it, so it is refused; if its administrator regenerated it (\`ntls cert show --pem\` on the server), accept the new one with \`${replace}\`${CHECK_OUT_OF_BAND}` };
    }
    if (isServerDown(error)) {
      return { code: 'NTLS_ERR_SERVER_DOWN', line: `${server} cannot be reached (${error.errno}); check that ntls runs there and that host and port are right (\`ntls-client list-servers\`)` };
    }
    if (isClientRefusal(error)) {
      // What this side knows: its certificate is valid (checked before linking) and the server
      // is the pinned one (checked in the handshake). Whether the server does not know the
      // certificate, knows it for another host address, or has removed it, only the server
      // knows; its log says which (docs/logs.md).
      const name = context.clientName ?? 'NAME';
      const address = error.localAddress ?? 'ITS-ADDRESS';
      const file = context.clientCertificateFile ?? 'CERT.pem';
      return {
        code: 'NTLS_ERR_CLIENT_REFUSED',
        line: `${server} refused this client's certificate, sent from ${address}, after the TLS handshake; this side's checks passed (the certificate is valid, the server presented its pinned certificate), so the server does not accept it from this address: not registered there, registered for another host, or removed; ask its administrator to look with \`ntls client show --client ${name}\` (unknown there: \`ntls client register --client ${name} --cert ${file} --hostname ${address}\`; another host: \`ntls client hostip --client ${name} --hostname ${address}\`)`,
      };
    }
    if (error.code === 'NTLS_ERR_TIMEOUT' && error.stage === 'connect') {
      return { code: error.code, line: `${server} did not complete the TLS handshake (${error.message}); check that host and port are those of an NTLS server (\`ntls-client list-servers\`), that nothing on the way drops the connection, and that ntls there is not overloaded` };
    }
    if (error.code === 'NTLS_ERR_TIMEOUT') {
      return { code: error.code, line: `${server} did not answer in time (${error.message}); check the server and the network, or raise receiveTimeout in client.json` };
    }
    if (error.code === 'NTLS_ERR_NOT_NTLS') {
      return { code: error.code, line: `${server} does not speak NTLS (${error.message}); check the host and port (\`ntls-client list-servers\`)` };
    }
    if (error.code === 'NTLS_ERR_LINK_CLOSED') {
      return { code: error.code, line: `${server} closed the link${/closed the link/.test(error.message) ? '' : ` (${error.message})`}; try again, and if it persists see the server's log` };
    }
    return { code: error.code, line: `the TLS link to ${server} failed: ${error.message}; check the host, port and certificates` };
  }
  if (error instanceof Pkcs11Error) {
    return { code: ckrName(error.rv), line: pkcs11Line(error) };
  }
  if (error instanceof NtlsError) {
    return { code: error.code, line: `${error.message}${error.hint ? `; ${error.hint}` : ''}` };
  }
  // Not ours: a system error (ENOENT and the like) keeps its code, anything else is internal.
  const e = error as NodeJS.ErrnoException;
  return { code: e?.code ?? 'NTLS_ERR_INTERNAL', line: `unexpected failure: ${e?.message ?? String(error)}` };
}

/** Said with every server-certificate mismatch: the same refusal is what someone in between causes. */
const CHECK_OUT_OF_BAND = '; before accepting a new certificate, compare its fingerprint with `ntls cert show` run on the server, over a channel you trust: if nobody regenerated it, something between you and the server may be presenting its own';

function pkcs11Line(error: Pkcs11Error): string {
  // The code itself ends the line (` [CKR_...]`): not said twice.
  const name = ckrName(error.rv);
  const detail = error.message.startsWith(name) ? error.message.slice(name.length).replace(/^[:;,]?\s*/, '') : error.message;
  switch (error.rv) {
    case CKR.PIN_INCORRECT: return `the PIN is wrong; try again with the right one, as repeated failures lock the role`;
    case CKR.PIN_LOCKED: return `the PIN is locked after too many failures; a locked Crypto Officer PIN is set anew by the partition's SO (\`ntls-client init-pin\`); a locked SO PIN cannot be: the server's administrator deletes and recreates the partition, and its keys are lost`;
    case CKR.PIN_LEN_RANGE: return `the PIN has a length the partition does not accept`;
    case CKR.USER_PIN_NOT_INITIALIZED: return `the partition has no Crypto Officer PIN yet; its SO must set one first`;
    case CKR.USER_NOT_LOGGED_IN: return `this needs a login; give the PIN with --pin or NTLS_PIN`;
    case CKR.SLOT_ID_INVALID: return `this client has no such slot; \`ntls-client verify\` lists its slots`;
    case CKR.TOKEN_NOT_RECOGNIZED:
    case CKR.TOKEN_NOT_PRESENT: return `the token in this slot is not initialised; its SO initialises it with \`ntls-client init-token\``;
    case CKR.SIGNATURE_INVALID: return `the signature does not verify`;
    case CKR.MECHANISM_INVALID: return `the key or the partition does not offer this mechanism${detail ? ` (${detail})` : ''}`;
    case CKR.KEY_FUNCTION_NOT_PERMITTED: return `the key may not be used this way; use a key made for it`;
    default: return detail ? `the HSM refused: ${detail}` : 'the HSM refused';
  }
}

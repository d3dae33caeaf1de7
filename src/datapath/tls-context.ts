// The data path's TLS context: server certificate and key, the registered client certificates
// as the only trust anchors, cipher list and TLS versions. Each way it can fail has its own
// guide line; the caller refuses to start.
import { constants, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { RegisteredClient } from '../registry/client-registry.js';
import { NtlsError } from '../errors/ntls-error.js';

/** The TLS context cannot be built; `code` is the guide's RC_ code of the line written. */
export class TlsContextError extends NtlsError {
  constructor(code: string, detail: string, cause?: unknown) {
    super(code, detail, { cause });
  }
}

export interface ServerCredentials {
  certificatePem: string;
  key: KeyObject;
  certificate: X509Certificate;
}

function readServerCertificate(certificateFile: string, logger: Logger): { certificatePem: string; certificate: X509Certificate } {
  if (!existsSync(certificateFile)) {
    logger.log(Catalogue.configServerCertFileInvalid);
    throw new TlsContextError('RC_FILE_NAME_INVALID', `server certificate file ${certificateFile} does not exist`);
  }
  try {
    const certificatePem = readFileSync(certificateFile, 'utf8');
    return { certificatePem, certificate: new X509Certificate(certificatePem) };
  } catch (error) {
    logger.log(Catalogue.serverCertLoadFailed, { file: certificateFile });
    throw new TlsContextError('RC_SSL_LOAD_SERVER_CERT_ERROR', `server certificate ${certificateFile} cannot be read as a certificate: ${(error as Error).message}`, error);
  }
}

function pairUp(certificateFile: string, certificatePem: string, certificate: X509Certificate, keySource: string, keyData: string | Buffer, logger: Logger): ServerCredentials {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyData);
  } catch (error) {
    logger.log(Catalogue.serverKeyLoadFailed);
    throw new TlsContextError('RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR', `server key ${keySource} cannot be read as a private key: ${(error as Error).message}`, error);
  }
  if (!certificate.checkPrivateKey(key)) {
    logger.log(Catalogue.serverKeyCheckFailed);
    throw new TlsContextError('RC_SSL_VALIDATE_SERVER_PRIVATE_KEY_ERROR', `server key ${keySource} does not belong to certificate ${certificateFile}`);
  }
  return { certificatePem, key, certificate };
}

export function loadServerCredentials(certificateFile: string, keyFile: string, logger: Logger): ServerCredentials {
  const { certificatePem, certificate } = readServerCertificate(certificateFile, logger);
  if (!existsSync(keyFile)) {
    logger.log(Catalogue.configServerKeyFileInvalid);
    throw new TlsContextError('RC_FILE_NAME_INVALID', `server key file ${keyFile} does not exist`);
  }
  return pairUp(certificateFile, certificatePem, certificate, keyFile, readFileSync(keyFile), logger);
}

/** The certificate from its file, the key given (keys in hardware: from the HSM). */
export function loadServerCredentialsWithKey(certificateFile: string, keyPem: string, logger: Logger): ServerCredentials {
  const { certificatePem, certificate } = readServerCertificate(certificateFile, logger);
  return pairUp(certificateFile, certificatePem, certificate, 'from the HSM', keyPem, logger);
}

/** Node takes TLS 1.3 suites (TLS_...) and TLS 1.2 ciphers in one colon-separated string. */
export function cipherString(server: Config['server']): string {
  return `${server.tls13CipherSuites}:${server.cipherList}`;
}

/** Checks the cipher settings alone, so a bad list is named as such before anything else. */
export function checkCipherSettings(server: Config['server'], logger: Logger): void {
  try {
    createSecureContext({ ciphers: cipherString(server), minVersion: server.minTlsVersion });
  } catch (error) {
    logger.log(Catalogue.cipherListError);
    throw new TlsContextError('RC_SSL_CIPHER_LIST_ERROR', `cipher settings rejected by OpenSSL: ${(error as Error).message}`, error);
  }
}

export function buildServerContext(credentials: ServerCredentials, clients: readonly RegisteredClient[], server: Config['server'], logger: Logger): SecureContext {
  try {
    return createSecureContext({
      cert: credentials.certificatePem,
      key: credentials.key.export({ type: 'pkcs8', format: 'pem' }),
      // An explicit (possibly empty) list: never fall back to the public root CAs.
      ca: clients.map((c) => c.certificatePem),
      ciphers: cipherString(server),
      minVersion: server.minTlsVersion,
      maxVersion: 'TLSv1.3',
      honorCipherOrder: true,
      // ntls's clients never resume a session, and a stateless ticket costs a quarter of a
      // connect's CPU: OpenSSL encodes the session, client certificate included, decodes it
      // again and encrypts it. Without it TLS 1.3 tickets name a session no cache holds.
      // No renegotiation (TLS 1.2): a TLSSocket made on an accepted socket has none of
      // tls.Server's limit on it, so one registered client could make the daemon do full
      // handshakes without end, and a renegotiated link could present another certificate.
      secureOptions: constants.SSL_OP_NO_TICKET | constants.SSL_OP_NO_RENEGOTIATION,
    });
  } catch (error) {
    logger.log(Catalogue.opensslServerContextFailed);
    throw new TlsContextError('RC_SOCKET_ERROR', `TLS context could not be built: ${(error as Error).message}`, error);
  }
}

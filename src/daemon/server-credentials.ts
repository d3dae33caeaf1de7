import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { createSelfSignedCertificate, createSelfSignedCertificateForKey, type KeyType } from '../certificates/self-signed.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import { NtlsError } from '../errors/ntls-error.js';

/** The server key and certificate could not be made. */
export class ServerCredentialsError extends NtlsError {
  declare readonly code: 'RC_GENERAL_ERROR' | 'RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR';
  /** A fault of the configuration (a wrong administrative PIN): starting again as it is cannot help. */
  readonly configuration: boolean;
  constructor(message: string, cause?: unknown, options: { code?: 'RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR'; configuration?: boolean } = {}) {
    super(options.code ?? 'RC_GENERAL_ERROR', message, { cause });
    this.configuration = options.configuration ?? false;
  }
}

/** Who the server's self-signed certificate names: this host, localhost and the loopback addresses. */
function serverSubject() {
  const host = hostname();
  return { commonName: host, usage: 'server' as const, dnsNames: [host, 'localhost'], ipAddresses: ['127.0.0.1', '::1'] };
}

async function makeCredentials(keyType: KeyType) {
  return createSelfSignedCertificate({ ...serverSubject(), keyType });
}

/** A self-signed server certificate for a key that already exists (a key file, the HSM's key). */
export function serverCertificateForKey(privateKeyPem: string): Promise<string> {
  return createSelfSignedCertificateForKey(serverSubject(), privateKeyPem);
}

/**
 * Replaces the server key and certificate with new ones (`ntls cert regen`). Each file is
 * written beside its target and renamed over it, so neither is ever half written.
 */
export async function replaceServerCredentials(certificateFile: string, keyFile: string, keyType: KeyType, logger: Logger): Promise<void> {
  let made;
  try {
    made = await makeCredentials(keyType);
  } catch (error) {
    logger.log(Catalogue.serverKeyCertCreateFailed, { error: -1 });
    throw new ServerCredentialsError(`server key and certificate could not be created: ${(error as Error).message}`, error);
  }
  writeFileSync(`${keyFile}.new`, made.keyPem, { mode: 0o600 });
  writeFileSync(`${certificateFile}.new`, made.certificatePem, { mode: 0o644 });
  renameSync(`${keyFile}.new`, keyFile);
  renameSync(`${certificateFile}.new`, certificateFile);
}

/**
 * On first start (neither file present) makes the server key and self-signed certificate.
 * If one of the two exists the operator's files are left alone; loading reports what is wrong.
 */
export async function ensureServerCredentials(certificateFile: string, keyFile: string, keyType: KeyType, logger: Logger): Promise<boolean> {
  if (existsSync(certificateFile) || existsSync(keyFile)) return false;
  try {
    const made = await makeCredentials(keyType);
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    mkdirSync(dirname(certificateFile), { recursive: true, mode: 0o755 });
    writeFileSync(keyFile, made.keyPem, { mode: 0o600 });
    writeFileSync(certificateFile, made.certificatePem, { mode: 0o644 });
    return true;
  } catch (error) {
    logger.log(Catalogue.serverKeyCertCreateFailed, { error: -1 });
    throw new ServerCredentialsError(`server key and certificate could not be created: ${(error as Error).message}`, error);
  }
}

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { createSelfSignedCertificate, type KeyType } from '../certificates/self-signed.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';

export class ServerCredentialsError extends Error {
  readonly code = 'RC_GENERAL_ERROR';
}

/**
 * On first start (neither file present) makes the server key and self-signed certificate.
 * If one of the two exists the operator's files are left alone; loading reports what is wrong.
 */
export async function ensureServerCredentials(certificateFile: string, keyFile: string, keyType: KeyType, logger: Logger): Promise<boolean> {
  if (existsSync(certificateFile) || existsSync(keyFile)) return false;
  const host = hostname();
  try {
    const made = await createSelfSignedCertificate({
      commonName: host, keyType, usage: 'server', dnsNames: [host, 'localhost'], ipAddresses: ['127.0.0.1', '::1'],
    });
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    mkdirSync(dirname(certificateFile), { recursive: true, mode: 0o755 });
    writeFileSync(keyFile, made.keyPem, { mode: 0o600 });
    writeFileSync(certificateFile, made.certificatePem, { mode: 0o644 });
    return true;
  } catch (error) {
    logger.log(Catalogue.serverKeyCertCreateFailed, { error: -1 });
    throw new ServerCredentialsError(`server key and certificate could not be created: ${(error as Error).message}`);
  }
}

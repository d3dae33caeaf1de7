// Where the server's TLS key comes from: a key file in the home (the default), or the HSM's
// administrative partition (server.keysInHardware). Either way the certificate is a file: it is
// public, and clients register it.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { createSelfSignedCertificateForKey } from '../certificates/self-signed.js';
import type { Config } from '../config/schema.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { CommandProcessorModule } from '../processor/contract.js';
import { loadServerCredentials, loadServerCredentialsWithKey, type ServerCredentials } from '../datapath/tls-context.js';
import type { HomeLayout } from '../home/layout.js';
import { ensureServerCredentials, replaceServerCredentials, ServerCredentialsError } from './server-credentials.js';

export interface ServerKeySource {
  load(): Promise<ServerCredentials>;
  /** A new key (and certificate); `ntls cert regen`. */
  regenerate(keyType: Config['server']['keyType']): Promise<ServerCredentials>;
}

export function fileKeySource(home: HomeLayout, config: Config, logger: Logger): ServerKeySource {
  return {
    async load() {
      await ensureServerCredentials(home.serverCertificate, home.serverKey, config.server.keyType, logger);
      return loadServerCredentials(home.serverCertificate, home.serverKey, logger);
    },
    async regenerate(keyType) {
      await replaceServerCredentials(home.serverCertificate, home.serverKey, keyType, logger);
      return loadServerCredentials(home.serverCertificate, home.serverKey, logger);
    },
  };
}

/** The administrative PIN: $NTLS_ADMIN_PIN, else `server/admin.pin` (made on first use, 0600). */
export function adminPin(home: HomeLayout): string {
  if (process.env.NTLS_ADMIN_PIN) return process.env.NTLS_ADMIN_PIN;
  const file = join(dirname(home.serverKey), 'admin.pin');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(16).toString('hex') + '\n', { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

export function hsmKeySource(home: HomeLayout, config: Config, logger: Logger, processor: CommandProcessorModule): ServerKeySource {
  const fetch = async (regenerate: boolean): Promise<ServerCredentials> => {
    if (!processor.cp_server_key) {
      logger.log(Catalogue.serverKeyCertCreateFailed, { error: -1 });
      throw new ServerCredentialsError('server.keysInHardware is set but the command processor has no HSM to keep the key in');
    }
    let key;
    try {
      key = await processor.cp_server_key({ partition: config.server.adminPartition, pin: adminPin(home), regenerate });
    } catch (error) {
      logger.log(Catalogue.serverKeyCertCreateFailed, { error: -1 });
      throw new ServerCredentialsError(`the server key could not be had from partition ${config.server.adminPartition}: ${(error as Error).message}`, error);
    }
    const file = home.serverCertificate;
    const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
    if (!current || key.created || !certificateMatches(current, key.privateKeyPem)) {
      const host = hostname();
      const pem = await createSelfSignedCertificateForKey({
        commonName: host, usage: 'server', dnsNames: [host, 'localhost'], ipAddresses: ['127.0.0.1', '::1'],
      }, key.privateKeyPem);
      mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
      writeFileSync(`${file}.new`, pem, { mode: 0o644 });
      renameSync(`${file}.new`, file);
    }
    return loadServerCredentialsWithKey(file, key.privateKeyPem, logger);
  };
  return { load: () => fetch(false), regenerate: () => fetch(true) };
}

function certificateMatches(certificatePem: string, privateKeyPem: string): boolean {
  try {
    return new X509Certificate(certificatePem).checkPrivateKey(createPrivateKey(privateKeyPem));
  } catch {
    return false;
  }
}

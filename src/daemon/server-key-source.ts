// Where the server's TLS key comes from: a key file in the home (the default), or the HSM's
// administrative partition (server.keysInHardware). Either way the certificate is a file: it is
// public, and clients register it.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import { CKR } from '../pkcs11/constants.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { CommandProcessorModule } from '../processor/contract.js';
import { loadServerCredentials, loadServerCredentialsWithKey, type ServerCredentials } from '../datapath/tls-context.js';
import type { HomeLayout } from '../home/layout.js';
import { ensureServerCredentials, replaceServerCredentials, serverCertificateForKey, ServerCredentialsError } from './server-credentials.js';

export interface ServerKeySource {
  load(): Promise<ServerCredentials>;
  /** A new key (and certificate); `ntls cert regen`. */
  regenerate(keyType: Config['server']['keyType']): Promise<ServerCredentials>;
}

// Turning server.keysInHardware on and off again must not leave a home that cannot start: the
// certificate file follows the key. Each source keeps the other's certificate beside the file
// (server.pem.file-key, server.pem.hsm-key) and puts it back when its key is the one in use
// again, so clients that registered it go on linking.
const FILE_KEY_COPY = '.file-key';
const HSM_KEY_COPY = '.hsm-key';

function sameFile(a: string, b: string): boolean {
  return existsSync(a) && existsSync(b) && readFileSync(a).equals(readFileSync(b));
}

function writeCertificate(file: string, pem: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(`${file}.new`, pem, { mode: 0o644 });
  renameSync(`${file}.new`, file);
}

/**
 * server.keysInHardware is off and the certificate file is still the HSM key's: the key file's
 * certificate comes back (or one is made for the key file, or key and certificate are made
 * anew when there is no key file). Says what it did, or null when there was nothing to do.
 */
async function leaveHsmCertificate(certificateFile: string, keyFile: string): Promise<string | null> {
  if (!sameFile(certificateFile, `${certificateFile}${HSM_KEY_COPY}`)) return null;
  if (!existsSync(keyFile)) {
    rmSync(certificateFile);
    return `there is no key file ${keyFile}: a new server key and certificate were made`;
  }
  const keyPem = readFileSync(keyFile, 'utf8');
  const kept = `${certificateFile}${FILE_KEY_COPY}`;
  if (existsSync(kept) && certificateMatches(readFileSync(kept, 'utf8'), keyPem)) {
    copyFileSync(kept, `${certificateFile}.new`);
    renameSync(`${certificateFile}.new`, certificateFile);
    return `${certificateFile} is again the certificate of ${keyFile}, as before the option was turned on`;
  }
  writeCertificate(certificateFile, await serverCertificateForKey(keyPem));
  return `a new certificate was made for ${keyFile}`;
}

export function fileKeySource(home: HomeLayout, config: Config, logger: Logger): ServerKeySource {
  return {
    async load() {
      const left = await leaveHsmCertificate(home.serverCertificate, home.serverKey);
      if (left) {
        process.stderr.write(`ntls: server.keysInHardware is off and ${home.serverCertificate} was the HSM key's certificate (kept as ${home.serverCertificate}${HSM_KEY_COPY}): ${left}; clients that registered the other certificate need this one (\`ntls cert show\`).\n`);
      }
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
      const rv = (error as { rv?: number }).rv;
      if (rv === CKR.PIN_INCORRECT || rv === CKR.PIN_LOCKED) {
        // The key is there; the administrative PIN does not open it. Each start with it counts a
        // failed login: the exit status is one the service unit does not restart on.
        logger.log(Catalogue.serverKeyLoadFailed);
        const locked = rv === CKR.PIN_LOCKED;
        throw new ServerCredentialsError(`the administrative PIN (${process.env.NTLS_ADMIN_PIN ? '$NTLS_ADMIN_PIN' : join(dirname(home.serverKey), 'admin.pin')}) `
          + `does not open partition ${config.server.adminPartition}, which holds the server key (${locked ? 'CKR_PIN_LOCKED: too many failed starts' : 'CKR_PIN_INCORRECT; every such start counts toward its lock'})`,
        error, { code: 'RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR', configuration: true });
      }
      logger.log(Catalogue.serverKeyCertCreateFailed, { error: -1 });
      throw new ServerCredentialsError(`the server key could not be had from partition ${config.server.adminPartition}: ${(error as Error).message}`, error);
    }
    const file = home.serverCertificate;
    const hsmCopy = `${file}${HSM_KEY_COPY}`;
    const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
    if (!current || key.created || !certificateMatches(current, key.privateKeyPem)) {
      // The key file's certificate is kept for when the option is turned off again.
      if (current && existsSync(home.serverKey) && certificateMatches(current, readFileSync(home.serverKey, 'utf8'))) copyFileSync(file, `${file}${FILE_KEY_COPY}`);
      const kept = !key.created && existsSync(hsmCopy) ? readFileSync(hsmCopy, 'utf8') : null;
      if (current) {
        // Clients registered the certificate served until now: they need the one served from here on.
        process.stderr.write(`ntls: server.keysInHardware is on: ${file} is ${kept && certificateMatches(kept, key.privateKeyPem) ? 'again' : 'now'} the certificate of the server key in partition ${config.server.adminPartition}${key.created ? ' (a new key)' : ''}; clients that registered the other certificate need this one (\`ntls cert show\`).\n`);
      }
      if (kept && certificateMatches(kept, key.privateKeyPem)) {
        writeCertificate(file, kept);
      } else {
        writeCertificate(file, await serverCertificateForKey(key.privateKeyPem));
      }
    }
    if (!sameFile(file, hsmCopy)) copyFileSync(file, hsmCopy);
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

// Loading the files a link needs: this client's certificate and key, and each server's
// certificate. Each failure is a ClientError naming the file and the fix, and is logged in the
// guide's words ("Chrystoki configuration client certificate file name invalid", ...).
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import { configPath, findServer, type ClientConfig } from './config.js';
import { ClientError } from './errors.js';
import type { ClientCredentials, ServerEndpoint } from './rpc-connection.js';

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function parseCertificate(pem: string): X509Certificate | null {
  try {
    return new X509Certificate(pem);
  } catch {
    return null;
  }
}

/** Group or others may read the file: a private key there is no longer private. */
export function readableByOthers(file: string): boolean {
  return (statSync(file).mode & 0o044) !== 0;
}

/**
 * A client certificate's own checks, before any link: it is a PEM certificate and within its
 * validity period (NTLS_ERR_CLIENT_CERT_FILE, NTLS_ERR_CLIENT_CERT_EXPIRED, _NOT_YET_VALID). From client.json and
 * from the flags (--cert) alike.
 */
export function checkClientCertificate(certificateFile: string, certificatePem: string, logger?: Logger): X509Certificate {
  const parsed = parseCertificate(certificatePem);
  if (!parsed) {
    logger?.log(Catalogue.clientCertLoadFailed, { file: certificateFile });
    throw new ClientError('NTLS_ERR_CLIENT_CERT_FILE', `${certificateFile} does not hold a PEM certificate`, 'point client.certificate (or --cert) at the certificate made by `ntls-client create-cert`');
  }
  const now = Date.now();
  if (Date.parse(parsed.validTo) < now || Date.parse(parsed.validFrom) > now) {
    logger?.log(Catalogue.clientCertLoadFailed, { file: certificateFile });
    if (Date.parse(parsed.validTo) < now) {
      throw new ClientError('NTLS_ERR_CLIENT_CERT_EXPIRED', `the client certificate ${certificateFile} expired on ${parsed.validTo}`,
        'make a new one with `ntls-client create-cert --force` and have the server\'s administrator take it (`ntls client renew`)');
    }
    throw new ClientError('NTLS_ERR_CLIENT_CERT_NOT_YET_VALID', `the client certificate ${certificateFile} is not valid before ${parsed.validFrom} (this host's time is ${new Date(now).toUTCString()})`,
      'check this host\'s clock (and the server\'s: it refuses the certificate too until then), or wait until that time');
  }
  return parsed;
}

/** A client key file's content: a private key, and the certificate's (NTLS_ERR_CLIENT_KEY_FILE). */
export function checkClientKey(keyFile: string, keyPem: string | null, certificate: X509Certificate, certificateFile: string, logger?: Logger): string {
  let keyObject: KeyObject | null = null;
  try {
    if (keyPem !== null) keyObject = createPrivateKey(keyPem);
  } catch {
    keyObject = null;
  }
  if (keyPem === null || keyObject === null) {
    logger?.log(Catalogue.clientKeyLoadFailed);
    throw new ClientError('NTLS_ERR_CLIENT_KEY_FILE', `${keyFile} does not hold a readable private key`, 'point client.key (or --key) at the key made by `ntls-client create-cert`');
  }
  if (!certificate.checkPrivateKey(keyObject)) {
    logger?.log(Catalogue.clientKeyLoadFailed);
    throw new ClientError('NTLS_ERR_CLIENT_KEY_FILE', `${keyFile} is not the key of ${certificateFile}`, 'use the key made with that certificate, or make a new pair with `ntls-client create-cert --force`');
  }
  return keyPem;
}

export function loadClientCredentials(folder: string, config: ClientConfig, logger?: Logger): ClientCredentials {
  const { certificate, key } = config.client;
  if (!certificate || !key) {
    throw new ClientError('NTLS_ERR_NO_CLIENT_CERT', 'this client has no certificate yet', 'make one with `ntls-client create-cert` and have the server\'s administrator register it');
  }
  const certificateFile = configPath(folder, certificate);
  const keyFile = configPath(folder, key);

  const certificatePem = existsSync(certificateFile) ? readText(certificateFile) : null;
  if (certificatePem === null) {
    logger?.log(Catalogue.configClientCertFileInvalid);
    throw new ClientError('NTLS_ERR_CLIENT_CERT_FILE', `the client certificate file ${certificateFile} does not exist or cannot be read`, 'fix client.certificate in client.json or run `ntls-client create-cert`');
  }
  const parsed = checkClientCertificate(certificateFile, certificatePem, logger);
  if (!existsSync(keyFile)) {
    logger?.log(Catalogue.configClientKeyFileInvalid);
    throw new ClientError('NTLS_ERR_CLIENT_KEY_FILE', `the client key file ${keyFile} does not exist`, 'fix client.key in client.json or run `ntls-client create-cert`');
  }
  if (readableByOthers(keyFile)) {
    logger?.log(Catalogue.clientKeyLoadFailed);
    throw new ClientError('NTLS_ERR_KEY_PERMISSIONS', `the client key file ${keyFile} can be read by group or others, so it is refused`, `run \`chmod 600 ${keyFile}\` (and consider making a new certificate)`);
  }
  const keyPem = checkClientKey(keyFile, readText(keyFile), parsed, certificateFile, logger);
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(parsed.subject)?.[1];
  return { certificatePem, keyPem, clientName: config.client.name ?? sanitizeName(cn) };
}

function sanitizeName(cn: string | undefined): string {
  const name = (cn ?? 'ntls-client').replace(/[^\x21-\x7e]/g, '_').slice(0, 200);
  return name || 'ntls-client';
}

/** Reads a server certificate file; `what` names it in messages. */
export function loadServerCertificate(file: string, logger?: Logger): { pem: string; certificate: X509Certificate } {
  const pem = existsSync(file) ? readText(file) : null;
  if (pem === null) {
    logger?.log(Catalogue.configServerCaFileInvalid);
    throw new ClientError('NTLS_ERR_SERVER_CERT_FILE', `the server certificate file ${file} does not exist or cannot be read`, 'copy server/server.pem from the ntls home and add it again with `ntls-client add-server --replace`');
  }
  const certificate = parseCertificate(pem);
  if (!certificate) {
    logger?.log(Catalogue.serverCaLoadFailed);
    throw new ClientError('NTLS_ERR_SERVER_CERT_FILE', `${file} does not hold a PEM certificate`, 'use the server\'s server/server.pem (`ntls cert show --pem` on the server)');
  }
  return { pem, certificate };
}

export function loadServerEndpoint(folder: string, config: ClientConfig, name: string | undefined, logger?: Logger): ServerEndpoint {
  const entry = findServer(config, name);
  const { pem } = loadServerCertificate(configPath(folder, entry.certificate), logger);
  return { name: entry.name, host: entry.host, port: entry.port, certificatePem: pem };
}

// Registered clients. The verify location folder of the home is the registry's store: each
// client is `<name>.pem` (its certificate) with an optional `<name>.json` beside it holding its
// host name or IP and its assigned partitions. Dropping a certificate file in registers a
// client; removing it unregisters the client.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { NtlsError } from '../errors/ntls-error.js';

export interface RegisteredClient {
  name: string;
  /** Host name or IP the client connects from, if registered. */
  host: string | null;
  partitions: string[];
  certificatePem: string;
  /** SHA-256 of the certificate's DER, lowercase hex without separators. */
  fingerprint: string;
  notAfter: Date;
  /** Its start date: before it the datapath refuses the certificate (a clock behind, or one made ahead). */
  notBefore: Date;
  file: string;
}

export interface InvalidRegistration {
  file: string;
  problem: string;
  /**
   * certificate: NAME.pem is no certificate; registration: NAME.json is not the client's host
   * and partitions; name: NAME cannot name a client; duplicate: NAME.pem is another client's
   * certificate (one certificate is one client). Such a client is not registered.
   */
  kind: 'certificate' | 'registration' | 'name' | 'duplicate';
}

export type RegistryErrorCode =
  | 'NTLS_ERR_NOT_A_CERTIFICATE' | 'NTLS_ERR_CLIENT_EXISTS' | 'NTLS_ERR_UNKNOWN_CLIENT' | 'NTLS_ERR_CLIENT_NAME'
  | 'NTLS_ERR_CERT_EXPIRED' | 'NTLS_ERR_CERT_REGISTERED';

export class RegistryError extends NtlsError {
  declare readonly code: RegistryErrorCode;
  constructor(code: RegistryErrorCode, detail: string, cause?: unknown) {
    super(code, detail, { cause });
  }
}

const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The one way `ntls` prints a fingerprint: SHA-256, upper-case hex pairs joined by colons. */
export function displayFingerprint(hex: string): string {
  return (hex.replaceAll(':', '').toUpperCase().match(/../g) ?? []).join(':');
}

export function fingerprintOf(certificate: X509Certificate): string {
  return certificate.fingerprint256.replaceAll(':', '').toLowerCase();
}

/** A registered certificate past its notAfter: the datapath refuses it at the handshake. */
export function isExpired(client: Pick<RegisteredClient, 'notAfter'>, at = new Date()): boolean {
  return client.notAfter.getTime() < at.getTime();
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

/**
 * What is odd about a certificate offered as a client's, though it would link (certificates are
 * pinned by fingerprint, so none of these lets anyone else in): each a sentence for the operator.
 */
export function certificateWarnings(certificatePem: string, at = new Date()): string[] {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificatePem);
  } catch {
    return [];
  }
  const warnings: string[] = [];
  const notBefore = new Date(certificate.validFrom);
  if (notBefore.getTime() > at.getTime()) warnings.push(`it is not valid before ${notBefore.toISOString()}: the client cannot link until then`);
  if (certificate.ca) warnings.push('it is a CA certificate (basicConstraints CA:TRUE), not an end-entity one; `ntls-client create-cert` makes a client certificate');
  const bits = certificate.publicKey.asymmetricKeyType === 'rsa' ? certificate.publicKey.asymmetricKeyDetails?.modulusLength ?? 0 : 0;
  if (bits > 0 && bits < 1024) {
    warnings.push(`its RSA key has ${bits} bits: the TLS handshake refuses keys under 1024 bits (OpenSSL's default security level), so this client cannot link`);
  } else if (bits > 0 && bits < 2048) {
    warnings.push(`its RSA key has ${bits} bits: keys under 2048 bits are weak`);
  }
  // node:crypto's keyUsage is the extended key usage (undefined when the certificate has none).
  const usages = certificate.keyUsage;
  if (usages && !usages.includes(CLIENT_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) {
    warnings.push(`its extended key usage (${usages.join(', ')}) does not include TLS client authentication (clientAuth)`);
  }
  return warnings;
}

export interface RegisterOptions {
  /** Register a certificate that has already expired (it cannot link until renewed). */
  allowExpired?: boolean;
}

export class ClientRegistry {
  private clients = new Map<string, RegisteredClient>();
  private byPrint = new Map<string, RegisteredClient>();
  private invalid: InvalidRegistration[] = [];

  constructor(readonly folder: string) {
    mkdirSync(folder, { recursive: true, mode: 0o750 });
  }

  /**
   * Reads the folder anew; returns files that are not usable certificates. A folder that cannot
   * be read throws its own error (ENOENT, ENOTDIR, EACCES), and the registrations stay as they were.
   */
  reload(): InvalidRegistration[] {
    const clients = new Map<string, RegisteredClient>();
    const invalid: InvalidRegistration[] = [];
    for (const entry of readdirSync(this.folder).sort()) {
      if (!entry.endsWith('.pem') || entry.startsWith('.')) continue;
      const file = join(this.folder, entry);
      const name = basename(entry, '.pem');
      // A file dropped into the folder meets the rules `ntls client register` applies.
      if (!CLIENT_NAME.test(name)) {
        invalid.push({ file, kind: 'name', problem: `"${name}" cannot name a client (1-64 letters, digits, '.', '_' or '-')` });
        continue;
      }
      let pem: string;
      let certificate: X509Certificate;
      try {
        pem = readFileSync(file, 'utf8');
        certificate = new X509Certificate(pem);
      } catch (error) {
        invalid.push({ file, kind: 'certificate', problem: (error as Error).message });
        continue;
      }
      let meta: { host?: string | null; partitions?: string[] };
      try {
        meta = this.readMeta(name);
      } catch (error) {
        invalid.push({ file: join(this.folder, `${name}.json`), kind: 'registration', problem: (error as Error).message });
        continue;
      }
      const fingerprint = fingerprintOf(certificate);
      const twin = [...clients.values()].find((c) => c.fingerprint === fingerprint);
      if (twin) {
        invalid.push({ file, kind: 'duplicate', problem: `the certificate of client ${twin.name}` });
        continue;
      }
      clients.set(name, {
        name, host: meta.host ?? null, partitions: meta.partitions ?? [], certificatePem: pem,
        fingerprint, notAfter: new Date(certificate.validTo), notBefore: new Date(certificate.validFrom), file,
      });
    }
    this.clients = clients;
    this.byPrint = new Map([...clients.values()].map((c) => [c.fingerprint, c]));
    this.invalid = invalid;
    return invalid;
  }

  list(): RegisteredClient[] {
    return [...this.clients.values()];
  }

  invalidFiles(): InvalidRegistration[] {
    return this.invalid;
  }

  byName(name: string): RegisteredClient | undefined {
    return this.clients.get(name);
  }

  byFingerprint(fingerprint: string): RegisteredClient | undefined {
    return this.byPrint.get(fingerprint);
  }

  /**
   * Writes the client's files (certificate last, atomically, so a watcher never sees half a file).
   * Refused: an expired certificate (unless `allowExpired`), and a certificate already registered
   * under another name (one certificate is one client: its links could not be told apart).
   */
  register(name: string, certificatePem: string, host: string | null, options: RegisterOptions = {}): RegisteredClient {
    if (!CLIENT_NAME.test(name)) throw new RegistryError('NTLS_ERR_CLIENT_NAME', `client name "${name}" must be 1-64 letters, digits, '.', '_' or '-'`);
    if (this.clients.has(name)) throw new RegistryError('NTLS_ERR_CLIENT_EXISTS', `client "${name}" is already registered`);
    const pem = this.acceptable(certificatePem, options);
    // Both files whole or neither (a full disk left an empty NAME.json behind).
    try {
      this.writeWhole(`${name}.json`, JSON.stringify({ host, partitions: [] }, null, 2) + '\n');
      this.writeWhole(`${name}.pem`, pem);
    } catch (error) {
      rmSync(join(this.folder, `${name}.json`), { force: true });
      throw error;
    }
    this.reload();
    return this.clients.get(name)!;
  }

  /**
   * A new certificate for a registered client (its old one expiring, or its key replaced): the
   * client keeps its name, host and partitions; links made with the old certificate end (the
   * verify-location monitor sees it go). Refused as at register: not a certificate, expired,
   * or another client's.
   */
  renew(name: string, certificatePem: string, options: RegisterOptions = {}): RegisteredClient {
    const client = this.clients.get(name);
    if (!client) throw new RegistryError('NTLS_ERR_UNKNOWN_CLIENT', `no client named "${name}" is registered`);
    const pem = this.acceptable(certificatePem, options, name);
    this.writeWhole(`${name}.pem`, pem);
    this.reload();
    return this.clients.get(name)!;
  }

  /** The certificate as stored (PEM), if a client may be registered with it. */
  private acceptable(certificatePem: string, options: RegisterOptions, renewing?: string): string {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(certificatePem);
    } catch {
      throw new RegistryError('NTLS_ERR_NOT_A_CERTIFICATE', 'the file is not a PEM or DER X.509 certificate');
    }
    const notAfter = new Date(certificate.validTo);
    if (!options.allowExpired && isExpired({ notAfter })) {
      throw new RegistryError('NTLS_ERR_CERT_EXPIRED', `the certificate expired on ${notAfter.toISOString()}`);
    }
    const holder = this.byPrint.get(fingerprintOf(certificate));
    if (holder && holder.name === renewing) throw new RegistryError('NTLS_ERR_CERT_REGISTERED', `this certificate is the one client "${holder.name}" has already`);
    if (holder) throw new RegistryError('NTLS_ERR_CERT_REGISTERED', `this certificate is already registered as client "${holder.name}"`);
    return certificate.toString();
  }

  /** Into a temporary file, then renamed: a watcher never sees half a file, a failure leaves none. */
  private writeWhole(file: string, content: string): void {
    const temp = join(this.folder, `.${file}.tmp`);
    try {
      writeFileSync(temp, content, { mode: 0o640 });
      renameSync(temp, join(this.folder, file));
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
  }

  /** Changes the registered host name or IP (null: none). */
  setHost(name: string, host: string | null): RegisteredClient {
    return this.updateMeta(name, (meta) => ({ ...meta, host }));
  }

  setPartitions(name: string, partitions: string[]): RegisteredClient {
    return this.updateMeta(name, (meta) => ({ ...meta, partitions }));
  }

  private updateMeta(name: string, change: (meta: { host: string | null; partitions: string[] }) => { host: string | null; partitions: string[] }): RegisteredClient {
    const client = this.clients.get(name);
    if (!client) throw new RegistryError('NTLS_ERR_UNKNOWN_CLIENT', `no client named "${name}" is registered`);
    const next = change({ host: client.host, partitions: client.partitions });
    this.writeWhole(`${name}.json`, JSON.stringify(next, null, 2) + '\n');
    this.reload();
    return this.clients.get(name)!;
  }

  remove(name: string): void {
    if (!this.clients.has(name)) throw new RegistryError('NTLS_ERR_UNKNOWN_CLIENT', `no client named "${name}" is registered`);
    rmSync(join(this.folder, `${name}.pem`), { force: true });
    rmSync(join(this.folder, `${name}.json`), { force: true });
    this.reload();
  }

  /** NAME.json: the client's host and partitions; anything else throws. */
  private readMeta(name: string): { host?: string | null; partitions?: string[] } {
    const file = join(this.folder, `${name}.json`);
    if (!existsSync(file)) return {};
    const meta = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    const { host, partitions } = (meta ?? {}) as { host?: unknown; partitions?: unknown };
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)
      || (host !== undefined && host !== null && typeof host !== 'string')
      || (partitions !== undefined && (!Array.isArray(partitions) || !partitions.every((p) => typeof p === 'string')))) {
      throw new Error('not {"host": HOST, "partitions": [SERIAL, ...]}');
    }
    return { host, partitions };
  }
}

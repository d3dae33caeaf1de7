// What the admin channel can ask of the running daemon. Each handler validates its arguments
// and refuses with an AdminError naming the problem and the fix; nothing is changed then.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import type { DatapathView } from '../datapath/datapath-view.js';
import type { HomeLayout } from '../home/layout.js';
import type { ProcessorAdminCommand, ProcessorName } from '../processor/contract.js';
import { displayFingerprint, isExpired, RegistryError, type ClientRegistry, type RegisteredClient } from '../registry/client-registry.js';
import { withResolved, type AdminHandler } from './server.js';
import { AdminError } from './protocol.js';

export interface ServiceControl {
  /** Admin commands the command processor serves (partition.*). */
  processorCommands: ReadonlyMap<string, ProcessorAdminCommand>;
  home: HomeLayout;
  config: Config;
  startedAt: Date;
  processor: ProcessorName;
  registry: ClientRegistry;
  /** The data path, summed over its worker processes. */
  datapath: DatapathView;
  address: AddressInfo;
  /** Re-reads the verify location now, applying changes to the TLS context and the processor. */
  rescanClients(): void;
  serverCertificate(): X509Certificate;
  regenerateServerCertificate(keyType: Config['server']['keyType']): Promise<X509Certificate>;
  setDebugLogging(enabled: boolean): void;
  /** Shut down and start again with the configuration file as it now is. */
  restart(): void;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function text(args: Record<string, unknown>, key: string, what: string): string {
  const value = args[key];
  if (typeof value !== 'string' || value.length === 0) throw new AdminError('NTLS_ERR_ADMIN_ARGUMENT', `${what} is missing`, `give ${what}`);
  return value;
}

export function checkHost(host: string): string {
  if (isIP(host) || HOST_NAME.test(host)) return host;
  throw new AdminError('NTLS_ERR_BAD_HOST', `"${host}" is neither an IP address nor a host name`, 'give an IPv4/IPv6 address or a DNS name');
}

function describeClient(client: RegisteredClient, connectionsByClient: Readonly<Record<string, number>>) {
  return {
    name: client.name,
    host: client.host,
    fingerprint: displayFingerprint(client.fingerprint),
    partitions: client.partitions,
    notAfter: client.notAfter.toISOString(),
    expired: isExpired(client),
    notYetValid: client.notBefore.getTime() > Date.now(),
    notBefore: client.notBefore.toISOString(),
    connections: connectionsByClient[client.name] ?? 0,
  };
}

function registryCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof RegistryError) {
      const hints: Record<RegistryError['code'], string> = {
        NTLS_ERR_NOT_A_CERTIFICATE: 'give the client\'s certificate file (PEM), made with `ntls-client create-cert`',
        NTLS_ERR_CLIENT_EXISTS: 'choose another name, or delete the client first',
        NTLS_ERR_UNKNOWN_CLIENT: 'see `ntls client list`',
        NTLS_ERR_CLIENT_NAME: 'use letters, digits, ".", "_" and "-"',
        NTLS_ERR_CERT_EXPIRED: 'have the client make a new one (`ntls-client create-cert`), or add --force to register it anyway',
        NTLS_ERR_CERT_REGISTERED: 'a client is one certificate: have this one make its own (`ntls-client create-cert`)',
      };
      throw new AdminError(error.code, error.message, hints[error.code]);
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
      throw new AdminError('NTLS_ERR_FILE', `cannot write the verify location (${code})`,
        code === 'ENOSPC' || code === 'EDQUOT' ? 'free space on the disk of the home\'s clients/ folder, then try again; nothing was changed' : 'make the home\'s clients/ folder writable by the daemon\'s user, then try again; nothing was changed');
    }
    throw error;
  }
}

export function adminHandlers(service: ServiceControl): Map<string, AdminHandler> {
  const { registry, datapath } = service;
  const describe = async (client: RegisteredClient) => describeClient(client, (await datapath.connections()).byClient);
  const known = (name: string) => registryCall(() => {
    const client = registry.byName(name);
    if (!client) throw new RegistryError('NTLS_ERR_UNKNOWN_CLIENT', `no client named "${name}" is registered`);
    return client;
  });
  const serverKeyLocation = () => service.config.server.keysInHardware
    ? `in the HSM, partition ${service.config.server.adminPartition}`
    : service.home.serverKey;
  const resolvePartition = async (partition: string) => {
    const resolve = service.processorCommands.get('partition.resolve');
    if (!resolve) throw new AdminError('NTLS_ERR_NO_PARTITIONS', 'the command processor in use has no partitions', 'use the built-in processor');
    return (await resolve({ partition })) as { serial: string; label: string };
  };
  const handlers: Record<string, AdminHandler> = {
    'client.register': (args) => {
      const name = text(args, 'name', 'a client name');
      const certificate = text(args, 'certificate', 'the client certificate');
      const host = typeof args.host === 'string' ? checkHost(args.host) : null;
      if (host === null && service.config.clients.ipCheck) {
        throw new AdminError('NTLS_ERR_HOST_REQUIRED', 'the ip check is on (clients.ipCheck) and no host was given',
          'give --hostname: the address or name the client connects from (behind NAT, the translated address; change it later with `ntls client hostip`)');
      }
      const client = registryCall(() => registry.register(name, certificate, host, { allowExpired: args.force === true }));
      service.rescanClients();
      return describe(client);
    },
    'client.renew': async (args) => {
      const client = known(text(args, 'name', 'a client name'));
      const certificate = text(args, 'certificate', 'the client certificate');
      const { byClient } = await datapath.connections();
      const linked = byClient[client.name] ?? 0;
      const renewed = registryCall(() => registry.renew(client.name, certificate, { allowExpired: args.force === true }));
      service.rescanClients();
      return { ...(await describe(renewed)), linksEnded: linked };
    },
    'client.list': async () => {
      const { byClient } = await datapath.connections();
      return registry.list().map((c) => describeClient(c, byClient));
    },
    'client.show': (args) => describe(known(text(args, 'name', 'a client name'))),
    'client.fingerprint': (args) => ({ fingerprint: displayFingerprint(known(text(args, 'name', 'a client name')).fingerprint) }),
    'client.hostip': (args) => {
      const client = known(text(args, 'name', 'a client name'));
      const host = args.host === null ? null : checkHost(text(args, 'host', 'a host name or IP'));
      const updated = registryCall(() => registry.setHost(client.name, host));
      service.rescanClients();
      return describe(updated);
    },
    'client.assign-partition': async (args) => {
      const client = known(text(args, 'name', 'a client name'));
      const partition = await resolvePartition(text(args, 'partition', 'a partition'));
      if (client.partitions.includes(partition.serial)) {
        throw new AdminError('NTLS_ERR_ALREADY_ASSIGNED', `partition ${partition.label} is already assigned to ${client.name}`, 'see `ntls client show`');
      }
      const updated = registryCall(() => registry.setPartitions(client.name, [...client.partitions, partition.serial]));
      service.rescanClients();
      return withResolved(await describe(updated), { serial: partition.serial });
    },
    'client.revoke-partition': async (args) => {
      const client = known(text(args, 'name', 'a client name'));
      const named = text(args, 'partition', 'a partition');
      // A serial the client holds is taken as it is: its partition may be gone (a token undeployed).
      const serial = client.partitions.includes(named) ? named : (await resolvePartition(named)).serial;
      if (!client.partitions.includes(serial)) {
        throw new AdminError('NTLS_ERR_NOT_ASSIGNED', `partition ${named} is not assigned to ${client.name}`, 'see `ntls client show`');
      }
      const updated = registryCall(() => registry.setPartitions(client.name, client.partitions.filter((p) => p !== serial)));
      service.rescanClients();
      return withResolved(await describe(updated), { serial });
    },
    'partition.delete': async (args) => {
      const remove = service.processorCommands.get('partition.delete');
      if (!remove) throw new AdminError('NTLS_ERR_NO_PARTITIONS', 'the command processor in use has no partitions', 'use the built-in processor');
      const { serial } = await resolvePartition(text(args, 'partition', 'a partition'));
      const result = await remove({ ...args, partition: serial });
      // A deleted partition is no client's any more: `client show` lists only what exists.
      const holders = registry.list().filter((c) => c.partitions.includes(serial));
      for (const client of holders) registryCall(() => registry.setPartitions(client.name, client.partitions.filter((p) => p !== serial)));
      if (holders.length) service.rescanClients();
      return withResolved({ ...(result as object) }, { serial });
    },
    'client.delete': async (args) => {
      const client = known(text(args, 'name', 'a client name'));
      registryCall(() => registry.remove(client.name));
      service.rescanClients();
      const ended = await datapath.terminateClient(client.name);
      return { name: client.name, connectionsEnded: ended };
    },
    'cert.show': () => describeCertificate(service.serverCertificate(), service.home.serverCertificate, serverKeyLocation()),
    'cert.regen': async (args) => {
      const keyType = (typeof args.keyType === 'string' ? args.keyType : service.config.server.keyType) as Config['server']['keyType'];
      if (!['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'].includes(keyType)) {
        throw new AdminError('NTLS_ERR_ADMIN_ARGUMENT', `unknown key type ${keyType}`, 'use ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096');
      }
      return describeCertificate(await service.regenerateServerCertificate(keyType), service.home.serverCertificate, serverKeyLocation());
    },
    'log.debug': (args) => {
      if (typeof args.enabled !== 'boolean') throw new AdminError('NTLS_ERR_ADMIN_ARGUMENT', 'enabled must be true or false');
      service.setDebugLogging(args.enabled);
      return { debug: args.enabled };
    },
    'info.show': async () => {
      const counters = await datapath.statistics();
      const calls = service.processorCommands.get('processor.statistics');
      return {
        ...counters,
        workers: await datapath.processes(),
        connectionsNow: (await datapath.connections()).total,
        uptimeSeconds: Math.round((Date.now() - service.startedAt.getTime()) / 1000),
        calls: calls ? await calls({}) : [],
      };
    },
    'info.reset': async () => {
      await datapath.resetStatistics();
      await service.processorCommands.get('processor.statistics.reset')?.({});
      return { reset: true };
    },
    'service.restart': () => {
      service.restart();
      return { restarting: true, pid: process.pid };
    },
    'service.status': async () => ({
      pid: process.pid,
      home: service.home.root,
      startedAt: service.startedAt.toISOString(),
      listening: `${service.address.address}:${service.address.port}`,
      processor: service.processor,
      workers: datapath.workers,
      connections: (await datapath.connections()).total,
      clients: registry.list().length,
    }),
  };
  return new Map([...service.processorCommands, ...Object.entries(handlers)]);
}

function describeCertificate(certificate: X509Certificate, file: string, key: string) {
  return {
    pem: certificate.toString(),
    file,
    key,
    subject: certificate.subject,
    fingerprint: certificate.fingerprint256,
    notBefore: new Date(certificate.validFrom).toISOString(),
    notAfter: new Date(certificate.validTo).toISOString(),
    keyType: certificate.publicKey.asymmetricKeyType === 'ec'
      ? `ecdsa ${certificate.publicKey.asymmetricKeyDetails?.namedCurve ?? ''}`.trim()
      : `${certificate.publicKey.asymmetricKeyType} ${certificate.publicKey.asymmetricKeyDetails?.modulusLength ?? ''}`.trim(),
  };
}

// Every setting of the daemon, with its type, default and meaning, in one place.
// `ntls config show` and docs/operations.md are derived from the descriptions here.
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { isAddressOrHostName } from './addresses.js';

const port = z.number().int().min(0).max(65535);
const seconds = z.number().int().min(0).max(86400);

/** The settings, section by section (without the checks across sections). */
export const ConfigShape = z.object({
  server: z.object({
    bind: z.string().min(1).refine(isAddressOrHostName, { message: 'neither an IP address nor a host name' }).default('0.0.0.0')
      .describe('Address the data path listens on (0.0.0.0 or :: for all interfaces).'),
    port: port.default(1792).describe('TCP port of the data path (NTLS uses 1792).'),
    keyType: z.enum(['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096']).default('ecdsa-p256')
      .describe('Algorithm of the server key made on first start.'),
    certificateFile: z.string().default('server/server.pem').describe('Server certificate, relative to the home.'),
    keyFile: z.string().default('server/server.key').describe('Server private key, relative to the home.'),
    cipherList: z.string().min(1).default('AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384')
      .describe('OpenSSL cipher list for TLS 1.2.'),
    tls13CipherSuites: z.string().min(1).default('TLS_AES_256_GCM_SHA384')
      .describe('TLS 1.3 cipher suites.'),
    minTlsVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted.'),
    keysInHardware: z.boolean().default(false)
      .describe('Keep the server TLS key as an object of the HSM administrative partition instead of a key file.'),
    adminPartition: z.string().min(1).max(32).default('ntls-admin')
      .describe('Label of the administrative partition holding the server key (not assignable to clients).'),
  }).strict().default({}),
  clients: z.object({
    verifyLocation: z.string().default('clients').describe('Folder of registered client certificates, relative to the home.'),
    ipCheck: z.boolean().default(true)
      .describe('Refuse a client whose source address does not match its registered host (a client registered without a host is refused); false accepts a registered certificate from any address.'),
  }).strict().default({}),
  datapath: z.object({
    inboundWorkers: z.number().int().min(0).max(256).default(availableParallelism())
      .describe('Processes serving the TLS port, the main process included (default: the number of cores; 0 or 1: the main process alone; N: the main process and N-1 datapath workers). docs/workers.md.'),
    outboundWorkers: z.number().int().min(1).max(1024).default(4)
      .describe('Threads of the main process\'s libuv pool, where signatures and other cryptography run (UV_THREADPOOL_SIZE, unless the environment sets it).'),
    receiveTimeout: seconds.default(1200)
      .describe('Seconds a connected client may stay silent before the receive timer disconnects it (0: never).'),
    handshakeTimeout: z.number().int().min(100).max(120000).default(10000)
      .describe('Milliseconds allowed for TLS handshake and identity exchange together.'),
    maxPendingConnections: z.number().int().min(1).max(100000).default(256)
      .describe('Connections allowed at once that have not finished the identity exchange.'),
    maxPendingPerAddress: z.number().int().min(1).max(100000).default(16)
      .describe('Connections from one source address allowed at once before the identity exchange.'),
    maxConnections: z.number().int().min(1).max(100000).default(1024)
      .describe('Connections allowed at once in all.'),
    maxConnectionsPerClient: z.number().int().min(1).max(100000).nullable().default(null)
      .describe('Connections one registered client may have at once, so that it cannot take every slot; null: a quarter of datapath.maxConnections.'),
    memoryBudget: z.number().int().min(1024 * 1024).max(16 * 1024 * 1024 * 1024).default(256 * 1024 * 1024)
      .describe('Bytes all connections together may hold in request buffers; a request beyond it is refused (RC_MEMORY_ALLOCATION).'),
    connectionMemoryBudget: z.number().int().min(1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024)
      .describe('Bytes one connection may hold in request buffers at once.'),
    clientMemoryBudget: z.number().int().min(1024).max(16 * 1024 * 1024 * 1024).nullable().default(null)
      .describe('Bytes one registered client (all its connections together) may hold in request buffers; null: a quarter of datapath.memoryBudget.'),
    frameTimeout: seconds.default(30)
      .describe('Seconds a request may take from its header to its last byte before the connection is ended (0: no limit).'),
    maxFrameBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024)
      .describe('Largest request (options plus body) a client may send.'),
  }).strict().default({}),
  localSocket: z.object({
    enabled: z.boolean().default(false)
      .describe('Also serve the p11-kit protocol on a unix socket in the home (owner-only), for PKCS#11 programs on this host.'),
    path: z.string().default('p11kit.sock').describe('The socket, relative to the home; point P11_KIT_SERVER_ADDRESS=unix:path=... at it.'),
  }).strict().default({}),
  tcpKeepalive: z.object({
    idle: z.number().int().min(1).max(32767).default(10).describe('TCP_KEEPIDLE, seconds.'),
    interval: z.number().int().min(1).max(32767).default(10).describe('TCP_KEEPINTVL, seconds.'),
    count: z.number().int().min(1).max(127).default(2).describe('TCP_KEEPCNT, probes.'),
  }).strict().default({}),
  processor: z.object({
    module: z.string().nullable().default(null)
      .describe('Path of a command processor module; null uses the built-in one.'),
    workers: z.number().int().min(1).max(1024).default(50).describe('Command processor worker count.'),
    commandKeepalive: z.number().int().min(0).max(86400).default(0)
      .describe('Seconds a client may go without sending a command (a keepalive counts) before the processor ends it; 0: off.'),
    maxAppIdsPerClient: z.number().int().min(1).max(100_000).default(256)
      .describe('Persistent application ids (NTLS OpenAccess) one registered client may hold at once; past it OpenAccess is CKR_DEVICE_MEMORY.'),
  }).strict().default({}),
  hsm: z.object({
    maxPartitions: z.number().int().min(1).max(1000).default(100).describe('Most partitions the HSM holds.'),
    pinMinLength: z.number().int().min(1).max(255).default(7).describe('Shortest PIN accepted.'),
    pinMaxLength: z.number().int().min(1).max(255).default(255).describe('Longest PIN accepted.'),
    maxFailedLogins: z.number().int().min(1).max(100).default(10).describe('Consecutive bad logins that lock a role.'),
    kdfCost: z.number().int().min(1024).max(1 << 22).default(1 << 15)
      .describe('scrypt N of the keys derived from PINs (a power of two; lower only for tests).'),
    maxSessions: z.number().int().min(1).max(1_000_000).default(4096)
      .describe('Sessions open at once on one partition, all applications together; past it C_OpenSession is CKR_SESSION_COUNT.'),
    maxPartitionBytes: z.number().int().min(64 * 1024).max(64 * 1024 * 1024 * 1024).default(64 * 1024 * 1024)
      .describe('Bytes one partition\'s objects may take: token objects in the store (attributes and sealed secrets), session objects in memory (reported as the token\'s total memory); past it a call that would keep more is CKR_DEVICE_MEMORY.'),
    operationMemoryBudget: z.number().int().min(1024 * 1024).max(16 * 1024 * 1024 * 1024).default(256 * 1024 * 1024)
      .describe('Bytes the open operations of all sessions may hold as kept input (EdDSA, raw RSA, AES-GCM decryption, key wrap), one client\'s at most a quarter of it; past either an update is CKR_DEVICE_MEMORY.'),
    backend: z.enum(['software', 'pkcs11']).default('software')
      .describe('Where keys live: the built-in software HSM, or the PKCS#11 module of hsm.pkcs11 (docs/passthrough.md).'),
    pkcs11: z.object({
      module: z.string().min(1).nullable().default(null).describe('Path of the PKCS#11 module (.so) ntls fronts.'),
      callTimeout: z.number().int().min(1).max(3600).default(30)
        .describe('Seconds a module call may take before the module is taken for hung (device error, host restarted).'),
      tokens: z.array(z.object({
        partition: z.string().min(1).max(32).describe('The ntls partition name clients are assigned.'),
        label: z.string().min(1).max(32).optional().describe("The module token's label."),
        serial: z.string().min(1).max(16).optional().describe("The module token's serial number (preferred: labels can repeat)."),
        pin: z.string().min(1).optional().describe('A user PIN ntls logs the token in with and keeps it logged in; clients still log in with it.'),
      }).strict().refine((t) => (t.label === undefined) !== (t.serial === undefined), {
        message: 'give the token by label or by serial, one of the two',
      })).default([]).describe('ntls partitions and the module tokens they are, in slot order.'),
    }).strict().default({}).describe('The PKCS#11 module behind ntls when hsm.backend is pkcs11 (docs/passthrough.md).'),
  }).strict().default({}),
  store: z.object({
    backend: z.enum(['sqlite', 'postgres']).default('sqlite')
      .describe('Where the built-in HSM keeps partitions and keys: the SQLite file of the home (hsm/hsm.db), or a PostgreSQL database several nodes share (docs/ha.md).'),
    url: z.string().min(1).nullable().default(null)
      .describe('PostgreSQL connection URL when store.backend is postgres (postgresql://user@host:port/database?sslmode=...); keep the password out of it with PGPASSWORD or ~/.pgpass.'),
    poolSize: z.number().int().min(1).max(1000).default(10).describe('PostgreSQL connections this node keeps at most.'),
  }).strict().default({}),
  metrics: z.object({
    enabled: z.boolean().default(false).describe('Serve Prometheus metrics over HTTP.'),
    bind: z.string().min(1).refine(isAddressOrHostName, { message: 'neither an IP address nor a host name' }).default('127.0.0.1')
      .describe('Address of the metrics endpoint (keep it local).'),
    port: port.default(9792).describe('Port of the metrics endpoint (GET /metrics).'),
  }).strict().default({}),
  log: z.object({
    debug: z.boolean().default(false).describe('Write debug messages.'),
    maxBytes: z.number().int().min(4096).default(10 * 1024 * 1024).describe('Rotate lunalogs beyond this size.'),
    keep: z.number().int().min(0).max(100).default(5).describe('Rotated log files kept.'),
    syslog: z.object({
      transport: z.enum(['udp', 'tcp', 'unix']).default('udp'),
      format: z.enum(['rfc3164', 'rfc5424']).default('rfc3164'),
      host: z.string().default('127.0.0.1'),
      port: port.default(514),
      path: z.string().optional(),
    }).strict().nullable().default(null).describe('Also send every line to this syslog receiver.'),
  }).strict().default({}),
}).strict();

export const ConfigSchema = ConfigShape.superRefine((config, context) => {
  if (config.hsm.pinMinLength > config.hsm.pinMaxLength) {
    context.addIssue({ code: 'custom', path: ['hsm', 'pinMinLength'], message: `greater than hsm.pinMaxLength (${config.hsm.pinMaxLength})` });
  }
  if (config.log.syslog?.transport === 'unix' && !config.log.syslog.path) {
    context.addIssue({ code: 'custom', path: ['log', 'syslog', 'path'], message: 'log.syslog.transport is unix: give the socket path' });
  }
  if (config.metrics.enabled && config.metrics.port !== 0 && config.metrics.port === config.server.port && config.metrics.bind === config.server.bind) {
    context.addIssue({ code: 'custom', path: ['metrics', 'port'], message: 'the same address and port as the data path (server.port)' });
  }
  if (config.store.backend === 'postgres' && config.store.url === null) {
    context.addIssue({ code: 'custom', path: ['store', 'url'], message: 'store.backend is postgres: give the database URL' });
  }
  if (config.store.backend === 'postgres' && config.hsm.backend === 'pkcs11') {
    context.addIssue({ code: 'custom', path: ['store', 'backend'], message: 'the PostgreSQL store is the built-in HSM\'s (hsm.backend software)' });
  }
  const { backend, pkcs11 } = config.hsm;
  if (backend !== 'pkcs11') return;
  if (pkcs11.module === null) context.addIssue({ code: 'custom', path: ['hsm', 'pkcs11', 'module'], message: 'hsm.backend is pkcs11: give the module path' });
  if (pkcs11.tokens.length === 0) context.addIssue({ code: 'custom', path: ['hsm', 'pkcs11', 'tokens'], message: 'hsm.backend is pkcs11: map at least one partition to a token' });
  const names = pkcs11.tokens.map((t) => t.partition);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) context.addIssue({ code: 'custom', path: ['hsm', 'pkcs11', 'tokens'], message: `partition ${twice} is mapped twice` });
  if (config.server.keysInHardware) {
    context.addIssue({ code: 'custom', path: ['server', 'keysInHardware'], message: 'keys in hardware need the built-in HSM (hsm.backend software)' });
  }
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}

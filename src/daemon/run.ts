// The daemon's composition root: configuration, log, server credentials, command processor,
// datapath engine, verify-location monitor, signals. Start-up writes the guide's sequence;
// any failure writes the guide's lines for it and the daemon exits non-zero, never half started.
import type { KeyObject } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { applyOverrides, ConfigError, loadConfig, type ConfigOverrides } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Catalogue } from '../log/catalogue.js';
import { Logger } from '../log/logger.js';
import { installCrashHandler, nativeFaultForTest } from '../datapath/crash-handler.js';
import { BindError, DatapathEngine } from '../datapath/engine.js';
import { buildServerContext, checkCipherSettings, cipherString, TlsContextError } from '../datapath/tls-context.js';
import { VerifyLocationMonitor, logInvalidRegistration } from '../datapath/verify-location-monitor.js';
import { DATAPATH_CONTRACT_VERSION } from '../processor/contract.js';
import { loadProcessor, ProcessorLoadError, type LoadedProcessor } from '../processor/loader.js';
import { failureLine, NtlsError } from '../errors/ntls-error.js';
import { ClientRegistry, type InvalidRegistration } from '../registry/client-registry.js';
import { SECRET_FOLDERS, homeLayout, resolveHome, type HomeLayout } from '../home/layout.js';
import { HomeInUseError, HomeLock } from './home-lock.js';
import { takeStopSignals } from './stop-signals.js';
import { HomeWritableError, secureHome, secureSecrets } from './home-permissions.js';
import { ServerCredentialsError } from './server-credentials.js';
import { fileKeySource, hsmKeySource } from './server-key-source.js';
import { AdminServer } from '../admin/server.js';
import { adminHandlers } from '../admin/handlers.js';
import { homeBackupHandlers } from '../admin/home-backup.js';
import { AuditLog, sayAuditFailure } from '../audit/audit-log.js';
import { storePath } from '../store/hsm-store.js';
import { auditAdminRequest, auditHandlers } from '../audit/admin-audit.js';
import { RepeatedRefusals } from '../audit/repeated-refusals.js';
import { ADMIN_SOCKET } from '../admin/protocol.js';
import { dirname, join, resolve } from 'node:path';
import { serveMetrics } from '../metrics/http-exporter.js';
import { combinedDatapath } from './datapath-view.js';
import { WorkerPool, workerConfig } from './worker-pool.js';
import { registerDatapathMetrics } from '../metrics/datapath-metrics.js';
import { daemonRegistry } from '../metrics/registry.js';
import { healthProbe } from './health-probe.js';
import { nextSteps } from './next-steps.js';
import { NTLS_VERSION } from '../version.js';

export interface DaemonOptions extends ConfigOverrides {
  home?: string;
  /** Mirror log lines on stderr. */
  echo?: boolean;
}

export const ExitStatus = { Ok: 0, StartFailed: 1, BadConfiguration: 2 } as const;

/** A start-up failure: the guide's lines are written; `hint` tells the operator what to do. */
class StartError extends NtlsError {
  declare readonly hint: string;
  constructor(code: string, readonly status: number, message: string, hint: string) {
    super(code, message, { hint });
  }
}

/** The server key and certificate as the workers receive them. */
function pemsOf(credentials: { certificatePem: string; key: KeyObject }): { certificatePem: string; keyPem: string } {
  return { certificatePem: credentials.certificatePem, keyPem: credentials.key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** The registered clients' folder; one that cannot be a folder stops the start-up with the guide's line. */
function openVerifyLocation(folder: string, root: string, logger: Logger): { registry: ClientRegistry; invalid: InvalidRegistration[] } {
  try {
    const registry = new ClientRegistry(folder);
    return { registry, invalid: registry.reload() };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EACCES' && code !== 'EPERM') throw error;
    logger.log(Catalogue.configClientCertPathInvalid);
    const problem = code === 'EACCES' || code === 'EPERM' ? 'cannot be read or made by this user' : 'is not a folder';
    throw new StartError('RC_FILE_NAME_INVALID', ExitStatus.StartFailed, `the verify location ${folder} (clients.verifyLocation) ${problem}`, `point clients.verifyLocation at a folder of client certificates (\`ntls config set clients.verifyLocation DIR --home ${root}\`), or move the file away, then start again`);
  }
}

/** The start refused for a file of the verify location: what is wrong with it, and what to do. */
function invalidRegistrationError(bad: InvalidRegistration): StartError {
  const [code, problem, hint]: [string, string, string] = ({
    certificate: ['RC_SSL_CERT_VERIFICATION_LOCATION_ERROR', 'is not a certificate', 'remove or replace it'],
    registration: ['RC_GENERAL_ERROR', `is not a client's registration (${bad.problem})`,
      'fix it (it holds the client\'s host and partitions), or remove it and give the client its partitions again with `ntls client assign-partition`'],
    name: ['RC_SSL_CERT_VERIFICATION_LOCATION_ERROR', `names no client: ${bad.problem}`, 'rename it, or register the certificate with `ntls client register`'],
    duplicate: ['RC_SSL_CERT_VERIFICATION_LOCATION_ERROR', `is ${bad.problem}: one certificate is one client`, 'remove one of the two'],
  } satisfies Record<InvalidRegistration['kind'], [string, string, string]>)[bad.kind];
  return new StartError(code, ExitStatus.StartFailed, `${bad.file} in the verify location ${problem}`, `${hint}, then start again`);
}

/** A metrics port that cannot be listened on: what stands in the way, and the settings that choose another. */
function metricsStartError(bind: string, port: number, root: string, error: NodeJS.ErrnoException): StartError {
  const reason = error.code === 'EADDRINUSE' ? 'the port is in use by another program'
    : error.code === 'EADDRNOTAVAIL' ? 'the address is not one of this host\'s'
      : error.code === 'EACCES' ? 'this user may not listen on that port' : (error.code ?? error.message);
  return new StartError('RC_SOCKET_ERROR', ExitStatus.StartFailed, `cannot serve metrics on ${bind}:${port}: ${reason}`,
    `choose another with \`ntls config set metrics.port N --home ${root}\` (or metrics.bind), or turn them off with \`ntls config set metrics.enabled false --home ${root}\``);
}

/** The start's failure on stderr, ending as every failure of `ntls` does: `[CODE]`. */
function fail(line: string, code: string, status: number = ExitStatus.StartFailed): never {
  process.stderr.write(`ntls: ${line} [${code}]\n`);
  process.exit(status);
}

export interface RunningDaemon {
  home: HomeLayout;
  config: Config;
  engine: DatapathEngine;
  /** Where the datapath listens (the port chosen when the configuration says 0). */
  address: AddressInfo;
  /** Shuts down in the guide's order; `restarting` keeps the home (pid file and lock) for the next start. */
  stop(options?: { restarting?: boolean }): Promise<void>;
  /**
   * SIGHUP: re-reads what can change without ending a connection — the verify location (the
   * monitor restarts; removed clients' links end) and log.debug from the configuration file.
   */
  reload(): void;
  /** Resolves when an operator asked for a restart (`ntls service restart`). */
  restartRequested: Promise<void>;
}

export async function runDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const root = resolveHome(options.home);
  mkdirSync(root, { recursive: true, mode: 0o750 });
  // mkdir's mode applies to a new folder only: one the operator made is brought to 0750 here.
  try {
    const changed = secureHome(root);
    if (changed) process.stderr.write(`ntls: ${changed}.\n`);
  } catch (error) {
    if (error instanceof HomeWritableError) fail(`${error.message}; ${error.hint ?? ''}.`, error.code);
    throw error;
  }
  // Before anything is written: a second daemon on a live home must not touch its log or files.
  let lock: HomeLock;
  try {
    lock = await HomeLock.acquire(root, join(root, 'ntls.pid'));
  } catch (error) {
    if (error instanceof HomeInUseError) fail(`${error.message}; ${error.hint ?? ''}.`, error.code);
    throw error;
  }
  // The home is ours: a socket file left by a daemon that was killed is stale.
  rmSync(join(root, ADMIN_SOCKET), { force: true });
  let config: Config;
  try {
    config = applyOverrides(loadConfig(root), options);
  } catch (error) {
    if (error instanceof ConfigError) {
      const fix = error.file === '(command line)' ? 'correct the option' : 'correct the file';
      process.stderr.write(failureLine('ntls', error.code, `configuration error: ${error.file}: "${error.key}": ${error.problem}`, `${fix}; \`ntls config show\` lists every setting`) + '\n');
      process.exit(ExitStatus.BadConfiguration);
    }
    throw error;
  }
  const home = homeLayout(root, config);
  const store = storePath(root);
  // The server key's folder only where the default puts it: one elsewhere is the operator's to judge.
  const keyFolder = dirname(home.serverKey);
  for (const line of secureSecrets({
    folders: SECRET_FOLDERS.map((name) => join(root, name)).filter((folder) => folder !== join(root, 'server') || folder === keyFolder),
    files: [store, `${store}-wal`, `${store}-shm`, home.serverKey],
  })) process.stderr.write(`ntls: ${line}.\n`);
  mkdirSync(home.logDirectory, { recursive: true, mode: 0o750 });
  const logger = new Logger({
    file: home.logFile, maxBytes: config.log.maxBytes, keep: config.log.keep, debug: config.log.debug,
    syslog: config.log.syslog, echo: options.echo && !process.env.JOURNAL_STREAM,
    // Run by systemd: the journal takes stdout and stamps each line itself (docs/service.md).
    journal: process.env.JOURNAL_STREAM !== undefined && process.env.JOURNAL_STREAM !== '',
  });
  installCrashHandler(home.logDirectory, logger, home.logFile, options.echo ?? false);
  logger.log(Catalogue.startingUp);
  logger.log(Catalogue.opensslVersion, { version: `${process.versions.openssl} (node ${process.version})` });

  let processor: LoadedProcessor | undefined;
  const metrics = daemonRegistry(NTLS_VERSION);
  let requestRestart!: () => void;
  const restartRequested = new Promise<void>((resolve) => { requestRestart = resolve; });
  try {
    checkCipherSettings(config.server, logger);
    // Node's TLS signs with the key itself (it has no hook for an external signer, and cannot
    // use OpenSSL engines), so the HSM never performs SSL operations: the line says so, at the
    // guide's place, the SSL set-up before the command processor loads.
    logger.log(Catalogue.hsmCryptoSupport, { state: config.server.keysInHardware ? 'NOT enabled' : 'disabled' });
    const { registry, invalid } = openVerifyLocation(home.verifyLocation, root, logger);
    if (invalid.length) {
      for (const bad of invalid) logInvalidRegistration(logger, bad);
      throw invalidRegistrationError(invalid[0]!);
    }
    const audit = new AuditLog(root);
    const refusals = new RepeatedRefusals((event) => {
      try {
        audit.record(event);
      } catch (error) {
        sayAuditFailure(error);
      }
    });
    processor = await loadProcessor(config.processor.module, {
      home: root, config, logger, datapathVersion: DATAPATH_CONTRACT_VERSION, metrics, audit: (event) => refusals.record(event),
      assignedPartitions: (client) => registry.byName(client)?.partitions ?? [],
    });
    const keySource = config.server.keysInHardware
      ? hsmKeySource(home, config, logger, processor.module)
      : fileKeySource(home, config, logger);
    let credentials = await keySource.load();
    let context = buildServerContext(credentials, registry.list(), config.server, logger);
    // datapath.inboundWorkers: the processes serving the TLS port, this one included (0 or 1: this one alone).
    const tlsProcesses = Math.max(config.datapath.inboundWorkers, 1);
    // The threads the main process answers with: its libuv pool (`ntls start` sizes it from
    // datapath.outboundWorkers unless UV_THREADPOOL_SIZE is set), where the cryptography runs.
    const outbound = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    logger.log(Catalogue.workersConfigured, { inbound: tlsProcesses, outbound });

    // The main process accepts every connection of the TLS port; it serves some itself (and the
    // local socket) and hands the others to the datapath workers (placement.ts).
    const pool = tlsProcesses === 1 ? null : new WorkerPool({
      workers: tlsProcesses - 1, servingProcesses: tlsProcesses, config, logger, processor: processor.module, serverName: hostname(),
      verifyLocation: home.verifyLocation, logDirectory: home.logDirectory, logFile: home.logFile, credentials: pemsOf(credentials),
    });
    const engine: DatapathEngine = new DatapathEngine({
      config: pool ? workerConfig(config, tlsProcesses) : config, logger, registry, processor: processor.module, serverName: hostname(),
      secureContext: context, handOff: pool ? (socket) => pool.handOff(socket, engine.connectionCounts().total) : undefined,
    });
    const datapath = combinedDatapath(engine, pool);
    registerDatapathMetrics(metrics, datapath);
    await pool?.start().catch(async (error: unknown) => {
      await pool.stop();
      throw error;
    });
    const address = await engine.listen().catch(async (error: unknown) => {
      await pool?.stop();
      throw error;
    });
    if (config.localSocket.enabled) await engine.listenLocal(resolve(root, config.localSocket.path));
    let serving = true;
    const probe = healthProbe(processor.module, () => serving);
    // Before the online line: a metrics port in use is a failed start, not a daemon that says it
    // is online and then exits.
    const metricsServer = config.metrics.enabled
      ? await serveMetrics(metrics, config.metrics.bind, config.metrics.port, probe).catch(async (error: NodeJS.ErrnoException) => {
          await Promise.all([engine.close(), pool?.stop()]);
          throw metricsStartError(config.metrics.bind, config.metrics.port, root, error);
        })
      : null;
    const rebuildContext = () => {
      try {
        context = buildServerContext(credentials, registry.list(), config.server, logger);
        engine.replaceSecureContext(context);
      } catch {
        logger.log(Catalogue.contextUpdateFailed);
      }
    };
    const monitor = new VerifyLocationMonitor(registry, logger, (change) => {
      rebuildContext();
      // Unregistration ends live links too (after the monitor's "removed ... Flush" line), on every worker.
      const endUnregistered = change.removed.length > 0 || change.changed.length > 0;
      if (endUnregistered) engine.terminateUnregistered();
      pool?.registrationsChanged(endUnregistered);
      const module = processor!.module;
      for (const client of change.added) module.cp_client_registration_observer({ operation: 'registered', client: client.name });
      for (const client of change.removed) module.cp_client_registration_observer({ operation: 'removed', client: client.name });
      for (const client of change.changed) module.cp_client_registration_observer({ operation: 'assignments-changed', client: client.name });
    });
    monitor.start();
    logger.log(Catalogue.onlineAndOperational);
    const { idle, interval, count } = config.tcpKeepalive;
    logger.log(Catalogue.tcpKeepAliveConfigured, { idle, interval, count });
    logger.log(Catalogue.cipherListSet, { idle, ciphers: cipherString(config.server) });
    const admin = new AdminServer(join(root, ADMIN_SOCKET), new Map([...auditHandlers(audit), ['service.health', () => probe()],
      ...homeBackupHandlers(root, processor.module.cp_admin_commands?.() ?? new Map()), ...adminHandlers({
        processorCommands: processor.module.cp_admin_commands?.() ?? new Map(),
        home, config, startedAt: new Date(), processor: processor.name, registry, datapath, address,
        rescanClients: () => monitor.rescan(),
        serverCertificate: () => credentials.certificate,
        regenerateServerCertificate: async (keyType) => {
          credentials = await keySource.regenerate(keyType);
          rebuildContext();
          pool?.credentialsChanged(pemsOf(credentials));
          return credentials.certificate;
        },
        setDebugLogging: (enabled) => {
          logger.debugEnabled = enabled;
          pool?.setDebug(enabled);
        },
        restart: () => setImmediate(requestRestart),
      })]), auditAdminRequest(audit));
    await admin.listen();
    const listPartitions = processor.module.cp_admin_commands?.().get('partition.list');
    const partitionNames = listPartitions ? ((await listPartitions({})) as Array<{ name: string }>).map((p) => p.name) : [];
    process.stdout.write(`ntls: online on ${address.address}:${address.port} (home ${root}, log ${home.logFile})\n`
      + nextSteps({ root, certificateFile: home.serverCertificate, certificate: credentials.certificate, metrics: metricsServer?.address() ?? null, partitions: partitionNames }));

    let stopping: Promise<void> | null = null;
    const stop = ({ restarting = false } = {}) => {
      stopping ??= (async () => {
        serving = false;
        logger.log(Catalogue.shuttingDown);
        logger.log(Catalogue.initiatingDispatchTermination);
        await admin.close();
        metricsServer?.close();
        await Promise.all([engine.close(), pool?.stop()]);
        refusals.flushAll();
        logger.log(Catalogue.dispatchingTerminated);
        monitor.stop();
        // The guide's order: Terminating., then the command processor's shut down, then terminated.
        logger.log(Catalogue.terminating);
        try {
          await processor!.module.cp_shutdown();
          logger.log(Catalogue.processorShutDown, { module: processor!.name.name });
        } catch (error) {
          // A processor module that fails to shut down: not "shut downed", and not a crash either;
          // the shutdown goes on, and the exit status says it.
          process.stderr.write(`ntls: the command processor "${processor!.name.name}" failed to shut down: ${(error as Error).message} [NTLS_ERR_PROCESSOR_SHUTDOWN]\n`);
          process.exitCode = ExitStatus.StartFailed;
        }
        logger.log(Catalogue.processorModuleUnloaded);
        logger.log(Catalogue.terminated);
        await logger.close();
        if (!restarting) lock.release();
      })();
      return stopping;
    };
    const reload = () => {
      if (stopping) return;
      logger.reopenIfMoved();
      monitor.stop();
      monitor.start();
      monitor.reportInvalidAgain();
      monitor.rescan();
      try {
        logger.debugEnabled = loadConfig(root).log.debug;
        pool?.setDebug(logger.debugEnabled);
      } catch {
        // A file broken since the start: what runs stays; `ntls config show` names the problem.
      }
    };
    return { home, config, engine, address, stop, reload, restartRequested };
  } catch (error) {
    if (error instanceof BindError) {
      logger.log(Catalogue.applicationInitFailed);
      const reason = error.cause.code === 'EADDRINUSE' ? 'the port is in use by another program'
        : error.cause.code === 'EADDRNOTAVAIL' ? 'the address is not one of this host\'s'
          : error.cause.code === 'ENOTFOUND' || error.cause.code === 'EAI_AGAIN' ? 'the host name does not resolve' : (error.cause.code ?? error.cause.message);
      fail(`cannot listen on ${error.address}:${error.port}: ${reason}. Choose another with --port/--bind or \`ntls config set server.port N --home ${root}\`.`, error.code);
    }
    if (error instanceof TlsContextError && error.code === 'RC_SSL_CIPHER_LIST_ERROR') {
      logger.log(Catalogue.serverCreateFailed);
      fail(`${error.message}. Correct server.cipherList, server.tls13CipherSuites or server.minTlsVersion in ${home.configFile} (\`ntls config show\` lists them with their defaults; \`openssl ciphers -v LIST\` shows what OpenSSL makes of a list).`, error.code);
    }
    if (error instanceof ServerCredentialsError && error.configuration) {
      logger.log(Catalogue.serverCreateFailed);
      fail(`${error.message}. Give the PIN the partition was made with (NTLS_ADMIN_PIN, or server/admin.pin); a locked partition is unlocked by the next start with it.`, error.code, ExitStatus.BadConfiguration);
    }
    if (error instanceof TlsContextError || error instanceof ServerCredentialsError) {
      logger.log(Catalogue.serverCreateFailed);
      fail(`${error.message}. Fix the file or remove both server files to have new ones made.`, error.code);
    }
    if (error instanceof ProcessorLoadError) {
      logger.log(Catalogue.applicationSpecificInitFailed);
      // The built-in processor's own failure (its HSM's store, its PKCS#11 module) says what to fix itself.
      const cause = error.cause;
      if (cause instanceof NtlsError) fail(`${cause.message.replace(/\.$/, '')}${cause.hint ? `. ${cause.hint.replace(/\.$/, '')}` : ''}.`, cause.code);
      fail(`${error.message}. Fix processor.module in ${home.configFile}.`, error.code);
    }
    if (error instanceof StartError) {
      logger.log(Catalogue.applicationInitFailed);
      fail(`${error.message}: ${error.hint}.`, error.code);
    }
    throw error;
  }
}

/**
 * Runs in the foreground until SIGTERM or SIGINT, then shuts down in the guide's order (a second
 * signal meanwhile does not cut the shutdown short: it is bounded). SIGHUP — a closed terminal,
 * or an operator asking — re-reads the verify location and log.debug, and the daemon goes on.
 */
export async function runForeground(options: DaemonOptions): Promise<void> {
  // The handlers come first: a signal during the start-up is not the default action (death
  // without a line, files left behind) but a stop as soon as the daemon is up.
  let daemon: RunningDaemon | null = null;
  let stopping = false;
  const early = takeStopSignals({
    stop: () => {
      if (stopping) return;
      stopping = true;
      if (daemon) void daemon.stop().then(() => process.exit(process.exitCode ?? ExitStatus.Ok));
    },
    reload: () => {
      if (daemon && !stopping) daemon.reload();
    },
  });
  if (early) {
    // Stopped before the start-up began (`ntls` was still loading): nothing was started, so
    // nothing is written to the log; the operator sees why the daemon is not running.
    process.stderr.write(`ntls: ${early} before the start-up began: the daemon was not started.\n`);
    process.exit(ExitStatus.Ok);
  }
  const started = async (): Promise<RunningDaemon> => {
    const up = await runDaemon(options);
    if (stopping) {
      await up.stop();
      process.exit(ExitStatus.Ok);
    }
    daemon = up;
    return up;
  };
  let running = await started();
  // Test hooks of the crash handlers; with datapath workers, the workers take them (src/workers/worker.ts).
  const faultHere = running.config.datapath.inboundWorkers <= 1;
  if (faultHere && process.env.NTLS_FAULT_INJECTION === 'uncaught-on-connection') {
    // Test hook for the crash handler: the first accepted connection throws outside any handler.
    running.engine.onNextConnection(() => { throw new Error('fault injected by NTLS_FAULT_INJECTION'); });
  } else if (faultHere && process.env.NTLS_FAULT_INJECTION === 'native-fault-on-connection') {
    // The same with a real invalid memory access in native code (SIGSEGV).
    running.engine.onNextConnection(() => nativeFaultForTest());
  }
  // `ntls service restart`: the whole shutdown sequence, then the start-up sequence with the
  // configuration as it now is, in the same process (the pid and the terminal stay).
  for (;;) {
    await running.restartRequested;
    if (stopping) return;
    daemon = null;
    await running.stop({ restarting: true });
    running = await started();
  }
}

// A datapath worker: one process of the daemon that serves TLS connections beside the main
// process (which accepts them all and hands some here, src/daemon/placement.ts). Here: TLS,
// the identity exchange, framing, the admission limits, the receive timer. The requests go to
// the main process, which runs the command processor (one token model, one HSM, one log) over
// the worker's channel (fd 4); log lines and statistics go there too, over the IPC channel.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { Socket } from 'node:net';
import { installCrashHandler, nativeFaultForTest } from '../datapath/crash-handler.js';
import { DatapathEngine } from '../datapath/engine.js';
import { buildServerContext } from '../datapath/tls-context.js';
import { Logger } from '../log/logger.js';
import { ignoreQuietSignals } from '../process/quiet-signals.js';
import { RemoteProcessor } from './remote-processor.js';
import { ClientRegistry } from '../registry/client-registry.js';
import { ChannelKind, ChannelReader, ChannelWriter } from './channel.js';
import type { MainToWorker, WorkerInit, WorkerReport, WorkerToMain } from './messages.js';

const CHANNEL_FD = 4;
let workerIndex = 0;

function send(message: WorkerToMain): void {
  process.send?.(message);
}

function credentialsOf(pems: { certificatePem: string; keyPem: string }) {
  return { certificatePem: pems.certificatePem, key: createPrivateKey(pems.keyPem), certificate: new X509Certificate(pems.certificatePem) };
}

async function start(init: WorkerInit): Promise<void> {
  const { config } = init;
  workerIndex = init.index;
  const stream = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  const writer = new ChannelWriter(stream);
  // Until it serves, a worker's lines are its failure to, which the main process reports once.
  let serving = false;
  const logger = new Logger({
    debug: config.log.debug,
    relay: (message, params) => {
      if (serving) writer.send(ChannelKind.Log, 0, Buffer.from(JSON.stringify({ id: message.id, params })));
    },
  });
  // A fault ends this process before a relayed line could leave it: the crash line goes to the
  // log file directly, with this worker's pid.
  const crashLogger = new Logger({ file: init.logFile, maxBytes: config.log.maxBytes, keep: config.log.keep });
  installCrashHandler(init.logDirectory, crashLogger, init.logFile);
  ignoreQuietSignals();
  const registry = new ClientRegistry(init.verifyLocation);
  registry.reload();
  let credentials = credentialsOf(init.credentials);
  const context = () => buildServerContext(credentials, registry.list(), config.server, logger);

  const processor = new RemoteProcessor(writer);
  const reader = new ChannelReader();
  stream.on('data', (chunk: Buffer) => {
    for (const message of reader.push(chunk)) processor.deliver(message);
  });
  stream.on('error', () => undefined);
  stream.on('close', () => {
    processor.lost();
    process.exit(0);
  });

  const engine = new DatapathEngine({
    config: init.workerConfig, logger, registry, processor, serverName: init.serverName, secureContext: context(),
  });
  serving = true;
  injectFault(engine);
  process.on('message', (message: MainToWorker, handle?: unknown) => {
    switch (message.type) {
      case 'connection':
        if (handle instanceof Socket) adopt(engine, handle);
        break;
      case 'registrations':
        // The main process's monitor logs a folder it cannot read; the registrations stay as they were.
        try {
          registry.reload();
        } catch {
          /* kept */
        }
        engine.replaceSecureContext(context());
        if (message.endUnregistered) engine.terminateUnregistered();
        break;
      case 'credentials':
        credentials = credentialsOf(message);
        engine.replaceSecureContext(context());
        break;
      case 'debug':
        logger.debugEnabled = message.enabled;
        break;
      case 'terminate-client':
        send({ type: 'reply', id: message.id, value: engine.terminateClient(message.client) });
        break;
      case 'report':
        send({ type: 'reply', id: message.id, value: report(engine) });
        break;
      case 'reset-statistics':
        engine.statistics.reset();
        send({ type: 'reply', id: message.id, value: true });
        break;
      case 'stop':
        void engine.close().then(() => {
          stream.end();
          process.exit(0);
        });
        break;
    }
  });
  send({ type: 'serving' });
}

/** A connection from the main process: served here; the main process is told when it is gone (placement.ts counts). */
function adopt(engine: DatapathEngine, socket: Socket): void {
  socket.once('close', () => send({ type: 'released' }));
  engine.adopt(socket);
}

/** Test hooks of the crash handlers (NTLS_FAULT_INJECTION), as the main process has them without workers. */
function injectFault(engine: DatapathEngine): void {
  const fault = process.env.NTLS_FAULT_INJECTION;
  if (fault === 'uncaught-on-connection') engine.onNextConnection(() => { throw new Error('fault injected by NTLS_FAULT_INJECTION'); });
  else if (fault === 'native-fault-on-connection') engine.onNextConnection(() => nativeFaultForTest());
}

/** What the main process sums over its workers: statistics, and who is connected. */
function report(engine: DatapathEngine): WorkerReport {
  const { total, byClient } = engine.connectionCounts();
  return { index: workerIndex, pid: process.pid, statistics: engine.statistics.snapshot(), connections: total, clients: { ...byClient } };
}

process.once('message', (init: WorkerInit) => {
  start(init).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    // Exit once the message has left: the main process reports it.
    process.send?.({ type: 'failed', message } satisfies WorkerToMain, undefined, {}, () => process.exit(1));
  });
});

send({ type: 'ready' });

// The channel to the main process broken (EPIPE: it is stopping the workers, or gone): nothing
// left to serve.
process.on('error', () => process.exit(0));

// The main process may end without telling (kill -9): a worker without it has nothing to serve.
process.on('disconnect', () => process.exit(0));

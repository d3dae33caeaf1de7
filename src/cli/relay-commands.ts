// `ntls-client p11-relay`, and the link options it shares with `ping`. It is started for every
// program that loads libntls-pkcs11.so without a shared relay (and for p11-kit's `remote:
// |ntls-client p11-relay`), often a process per signature, so this module imports only what a
// relay needs: ntls-client.ts runs it without the other commands' code, and an HA relay's code is
// loaded only when one is asked for.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { runCommand, type CommandContext, type CommonOptions } from '../client/cli-support.js';
import { findServer, parseEndpoint } from '../client/config.js';
import { checkClientCertificate, checkClientKey, loadClientCredentials, loadServerCertificate, loadServerEndpoint, readableByOthers } from '../client/credentials.js';
import { ClientError } from '../client/errors.js';
import { explainFailure } from '../client/failure.js';
import type { LinkOptions } from '../client/link.js';
import { relayStreams, serveRelay, servedUntilStopped, type LinkLoss, type LinkSource, type RelayHooks } from '../client/relay.js';
import { common, type Examples } from './client-program.js';
import { ignoreQuietSignals } from '../process/quiet-signals.js';

/** A PEM file named by a flag (the relay and ping without client.json). */
function readPem(file: string, what: 'client certificate' | 'client key' | 'server certificate'): string {
  const code = what === 'client key' ? 'NTLS_ERR_CLIENT_KEY_FILE' : what === 'client certificate' ? 'NTLS_ERR_CLIENT_CERT_FILE' : 'NTLS_ERR_SERVER_CERT_FILE';
  if (!existsSync(file)) throw new ClientError(code, `the ${what} file ${file} does not exist`, 'check the path');
  if (what === 'client key' && readableByOthers(file)) {
    throw new ClientError('NTLS_ERR_KEY_PERMISSIONS', `the client key file ${file} can be read by group or others, so it is refused`, `run \`chmod 600 ${file}\``);
  }
  return readFileSync(file, 'utf8');
}

function endpoint(value: string): { host: string; port: number } {
  const address = parseEndpoint(value);
  if (!address) throw new InvalidArgumentError('give host, host:port, or an IPv6 address as [address]:port (port 1-65535).');
  return address;
}

export interface RelayOptions extends CommonOptions {
  server?: string;
  group?: string[];
  ha?: boolean;
  serverCert?: string;
  cert?: string;
  key?: string;
  name?: string;
  listen?: string;
  /** False with --no-read-ahead. */
  readAhead: boolean;
}

/** A server certificate named by --server-cert: it must hold a certificate (the pin). */
function readServerPem(file: string, context: CommandContext): string {
  readPem(file, 'server certificate');
  return loadServerCertificate(file, context.logger).pem;
}

/** Link options from the flags (all of --server host[:port], --server-cert, --cert, --key), else from client.json. */
export function relayLink(context: CommandContext, options: RelayOptions): LinkOptions {
  if (options.serverCert || options.cert || options.key) {
    if (!options.server || !options.serverCert || !options.cert || !options.key) {
      throw new ClientError('NTLS_ERR_ARGUMENT', 'without client.json the relay needs --server host[:port], --server-cert, --cert and --key', 'give all four, or none and use client.json (--server NAME)');
    }
    const address = endpoint(options.server);
    context.failure.server = { name: options.server, ...address };
    context.failure.serverCertificateFile = options.serverCert;
    context.failure.clientCertificateFile = options.cert;
    const certificatePem = readPem(options.cert, 'client certificate');
    // The certificate's own checks come first, as with client.json: an expired one never links.
    const certificate = checkClientCertificate(options.cert, certificatePem, context.logger);
    const keyPem = checkClientKey(options.key, readPem(options.key, 'client key'), certificate, options.cert, context.logger);
    const clientName = options.name ?? hostname();
    context.failure.clientName = clientName;
    return {
      ...address, clientName, certificatePem, keyPem,
      serverCertificatePem: readServerPem(options.serverCert, context),
    };
  }
  const config = context.config();
  const entry = findServer(config, options.server);
  context.failure.server = entry;
  const credentials = loadClientCredentials(context.folder, config, context.logger);
  context.failure.clientName = options.name ?? credentials.clientName;
  const server = loadServerEndpoint(context.folder, config, entry.name, context.logger);
  return {
    host: server.host, port: server.port, serverCertificatePem: server.certificatePem,
    certificatePem: credentials.certificatePem, keyPem: credentials.keyPem, clientName: options.name ?? credentials.clientName,
    timeoutMs: config.receiveTimeout > 0 ? config.receiveTimeout * 1000 : undefined,
  };
}

/** What a throttled line adds for the links it did not tell (throttleLine). */
function untoldLinks(untold: number): string {
  return untold > 0 ? ` (${untold} more link${untold === 1 ? '' : 's'} since the line before)` : '';
}

/**
 * The line for a link whose server lists no slot: it links (registered, right host), so what is
 * missing is a partition, which stock tools show only as "No slots". `ntls-client verify` says the same.
 */
export function noSlotsLine(where: string, clientName: string, untold = 0): string {
  const since = untoldLinks(untold);
  return `ntls-client: ${where} lists no slot for client ${clientName}${since}: no partition is assigned to it; ask its administrator to run \`ntls client assign-partition --client ${clientName} --partition NAME\`\n`;
}

/** The line for a link lost under a program: what its calls get now, and what gets it linked again. */
export function linkLostLine(where: string, why: LinkLoss, timeoutMs: number | undefined, untold = 0): string {
  const what = why === 'timeout' ? `answered nothing within ${Math.round((timeoutMs ?? 0) / 1000)} s` : 'ended';
  const since = untoldLinks(untold);
  return `ntls-client: the link to ${where} ${what}${since}; the program's calls answer CKR_DEVICE_ERROR until it initialises again (C_Finalize, then C_Initialize), which links anew\n`;
}

export const RELAY_LINE_QUIET_MS = 60_000;

/**
 * Calls `tell` at most once per RELAY_LINE_QUIET_MS, with the number of links since the last call
 * that were not told: a --listen relay's log shows a situation lasting without a line per program.
 */
export function throttleLine<T extends unknown[]>(tell: (untold: number, ...args: T) => void, now: () => number = Date.now): (...args: T) => void {
  let lastTold = -Infinity;
  let untold = 0;
  return (...args: T) => {
    if (now() - lastTold < RELAY_LINE_QUIET_MS) {
      untold++;
      return;
    }
    lastTold = now();
    tell(untold, ...args);
    untold = 0;
  };
}

/** Adds `p11-relay` to the program. */
export function p11RelayCommand(program: Command): void {
  common(program.command('p11-relay'))
    .description('bridge p11-kit\'s client module to ntls: on stdin/stdout (remote: |ntls-client p11-relay ...), or on a unix socket with --listen')
    .option('--server <name|host[:port]>', 'server name from client.json (default: the first); host[:port] with --server-cert, --cert and --key')
    .option('--server-cert <file>', 'the server\'s certificate (instead of client.json)')
    .option('--cert <file>', 'this client\'s certificate (instead of client.json)')
    .option('--key <file>', 'this client\'s private key (instead of client.json)')
    .option('--name <name>', 'name sent in the identity exchange (default: from client.json, else this host name)')
    .option('--listen <path>', 'serve a unix socket for P11_KIT_SERVER_ADDRESS=unix:path=<path>')
    .option('-g, --group <name>', 'serve this HA group of client.json (repeat for several): one virtual slot each', (value: string, previous: string[] = []) => [...previous, value])
    .option('--ha', 'serve every HA group of client.json')
    .option('--no-read-ahead', 'send every attribute read to the server (by default, consecutive reads of one object are answered from one read of its public attributes)')
    // stdout carries p11-kit's protocol here: nothing else may be written to it, not even --json.
    .action((options: RelayOptions) => runCommand({ ...options, json: false }, async (context) => {
      ignoreQuietSignals();
      if (options.group?.length || options.ha) {
        // HA's code (groups, virtual slots, status files) is loaded only for an HA relay.
        const { haRelay } = await import('./ha-relay.js');
        return haRelay(context, options);
      }
      let link = relayLink(context, options);
      const source: LinkSource = {
        current: () => link,
        reload: () => {
          context.reloadConfig();
          link = relayLink(context, options);
          return link;
        },
      };
      const where = `${link.host}:${link.port}`;
      const report = (error: Error) => {
        const failure = explainFailure(error, context.failure);
        process.stderr.write(`ntls-client: cannot link to ${where}: ${failure.line} [${failure.code}]\n`);
      };
      const tellNoSlots = (untold = 0) => process.stderr.write(noSlotsLine(where, link.clientName, untold));
      const tellLost = (untold: number, why: LinkLoss) => process.stderr.write(linkLostLine(where, why, link.timeoutMs, untold));
      // A --listen relay serves every program of the host: a line per program would flood its log.
      const hooks: RelayHooks = {
        readAhead: options.readAhead,
        answerTimeoutMs: link.timeoutMs,
        onNoSlots: options.listen ? throttleLine(tellNoSlots) : () => tellNoSlots(),
        onLinkLost: options.listen ? throttleLine(tellLost) : (why) => tellLost(0, why),
      };
      if (options.listen) {
        const server = await serveRelay(options.listen, source, report, hooks);
        process.stderr.write(`ntls-client: relaying ${options.listen} to ${where}\n`);
        await servedUntilStopped(server);
        await context.logger.close();
        process.exit(0);
      }
      await relayStreams(process.stdin, process.stdout, source, hooks);
      // The link is gone (the server closed it, or stdin ended): the relay ends with it, so that the
      // program on the other side of stdout sees its remote end at once (stdin, still read, would
      // keep this process and the program's wait alive).
      await context.logger.close();
      process.exit(0);
    }));
}

export const P11_RELAY_EXAMPLES: Examples = {
  'p11-relay': ['ntls-client p11-relay --server hsm1 --listen $XDG_RUNTIME_DIR/ntls/relay.sock', "export P11_KIT_SERVER_ADDRESS='|ntls-client p11-relay --server hsm1'"],
};

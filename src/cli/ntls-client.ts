#!/usr/bin/env node
// `ntls-client`: the client host's tools.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { createSelfSignedCertificate, type KeyType } from '../certificates/self-signed.js';
import { LinkError, openLink, type LinkOptions } from '../client/link.js';
import { relayStreams, serveRelay } from '../client/relay.js';
import { NtlsCall } from '../processor/contract.js';

function readPem(file: string, what: string): string {
  if (!existsSync(file)) {
    process.stderr.write(`ntls-client: the ${what} file ${file} does not exist.\n`);
    process.exit(2);
  }
  return readFileSync(file, 'utf8');
}

function endpoint(value: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(value);
  if (!match) return { host: value, port: 1792 };
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw new InvalidArgumentError('the port must be 1-65535.');
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

const program = new Command('ntls-client').description('ntls client tools').showHelpAfterError();

program.command('create-cert')
  .description('make this client\'s key and self-signed certificate')
  .option('--cn <name>', 'common name (default: this host name)', hostname())
  .option('--out <dir>', 'folder to write <cn>.pem and <cn>Key.pem into', '.')
  .option('--key-type <type>', 'ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096', 'ecdsa-p256')
  .action(async (options: { cn: string; out: string; keyType: KeyType }) => {
    mkdirSync(options.out, { recursive: true });
    const made = await createSelfSignedCertificate({ commonName: options.cn, keyType: options.keyType, usage: 'client', dnsNames: [options.cn] });
    const certificateFile = join(options.out, `${options.cn}.pem`);
    const keyFile = join(options.out, `${options.cn}Key.pem`);
    writeFileSync(keyFile, made.keyPem, { mode: 0o600 });
    writeFileSync(certificateFile, made.certificatePem, { mode: 0o644 });
    process.stdout.write(`certificate ${certificateFile}\nkey         ${keyFile}\n`);
  });

program.command('ping')
  .description('open a link to a server and exchange a keepalive')
  .requiredOption('--server <host[:port]>', 'server address', endpoint)
  .requiredOption('--server-cert <file>', 'the server\'s certificate (from its home: server/server.pem)')
  .requiredOption('--cert <file>', 'this client\'s certificate')
  .requiredOption('--key <file>', 'this client\'s private key')
  .option('--name <name>', 'name sent in the identity exchange', hostname())
  .action(async (options: { server: { host: string; port: number }; serverCert: string; cert: string; key: string; name: string }) => {
    try {
      const started = process.hrtime.bigint();
      const link = await openLink({
        host: options.server.host, port: options.server.port, clientName: options.name,
        certificatePem: readPem(options.cert, 'client certificate'), keyPem: readPem(options.key, 'client key'),
        serverCertificatePem: readPem(options.serverCert, 'server certificate'),
      });
      const body = Buffer.alloc(8);
      body.writeUInt32BE(NtlsCall.Keepalive, 0);
      await link.request(body);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      process.stdout.write(`linked to ${link.server.name} at ${options.server.host}:${options.server.port}: keepalive answered in ${ms.toFixed(1)} ms\n`);
      await link.close();
    } catch (error) {
      const code = error instanceof LinkError ? error.code : 'NTLS_ERR_TLS';
      process.stderr.write(`ntls-client: cannot link to ${options.server.host}:${options.server.port}: ${(error as Error).message} (${code}).\n`);
      process.exit(1);
    }
  });

program.command('p11-relay')
  .description('bridge p11-kit\'s client module to ntls: on stdin/stdout (remote: |ntls-client p11-relay ...), or on a unix socket with --listen')
  .requiredOption('--server <host[:port]>', 'server address', endpoint)
  .requiredOption('--server-cert <file>', 'the server\'s certificate')
  .requiredOption('--cert <file>', 'this client\'s certificate')
  .requiredOption('--key <file>', 'this client\'s private key')
  .option('--name <name>', 'name sent in the identity exchange', hostname())
  .option('--listen <path>', 'serve a unix socket for P11_KIT_SERVER_ADDRESS=unix:path=<path>')
  .action(async (options: { server: { host: string; port: number }; serverCert: string; cert: string; key: string; name: string; listen?: string }) => {
    const link: LinkOptions = {
      host: options.server.host, port: options.server.port, clientName: options.name,
      certificatePem: readPem(options.cert, 'client certificate'), keyPem: readPem(options.key, 'client key'),
      serverCertificatePem: readPem(options.serverCert, 'server certificate'),
    };
    const report = (error: Error) => {
      const code = error instanceof LinkError ? error.code : 'NTLS_ERR_TLS';
      process.stderr.write(`ntls-client: cannot link to ${options.server.host}:${options.server.port}: ${error.message} (${code}).\n`);
    };
    if (options.listen) {
      const server = await serveRelay(options.listen, link, report);
      process.stderr.write(`ntls-client: relaying ${options.listen} to ${options.server.host}:${options.server.port}\n`);
      const stop = () => server.close(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      return;
    }
    try {
      await relayStreams(process.stdin, process.stdout, link);
    } catch (error) {
      report(error as Error);
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);

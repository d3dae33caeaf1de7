// `ntls-client`'s commands: certificates, servers, `verify`, operations on a slot, `bench`, `ping`,
// HA groups, and `p11-relay` (relay-commands.ts, which ntls-client.ts also runs alone).
// Configuration in client.json of the client's config folder (docs/client.md); every failure is
// one line on stderr and a non-zero exit status.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { KeyType as CertificateKeyType } from '../certificates/self-signed.js';
import { writeFileAtomic } from '../files/atomic-file.js';
import { isCipherName, CIPHERS, type CipherName } from '../client/cipher.js';
import { pinFrom, readInput, runCommand, soPinFrom, writeOutput, type CommandContext, type CommonOptions } from '../client/cli-support.js';
import { DEFAULT_NTLS_PORT, ServerEntrySchema, configPath, findServer, saveClientConfig, type ServerEntry } from '../client/config.js';
import { loadClientCredentials, loadServerCertificate, loadServerEndpoint } from '../client/credentials.js';
import { ClientError } from '../client/errors.js';
import { explainFailure } from '../client/failure.js';
import { KEY_TYPES, isKeyType } from '../client/key-specs.js';
import { openLink } from '../client/link.js';
import { signingMechanism } from '../client/mechanism-names.js';
import { SIGNATURE_FORMATS, ecdsaDerToRaw, ecdsaRawToDer, isSignatureFormat, type SignatureFormat } from '../client/signature-format.js';
import { runBench, type BenchResult } from '../client/bench.js';
import { pkcs11ModulePath } from '../client/pkcs11-module.js';
import { NtlsClient, type SlotSummary } from '../client/ntls-client.js';
import { haCommands } from './ha-commands.js';
import { encodeRequest, request } from '../protocol/p11kit/index.js';
import type { TokenSession } from '../client/token-session.js';
import { CKA, CKK, CKO, CKR, CKU, Pkcs11Error } from '../pkcs11/constants.js';
import { clientProgram, common, nonNegative, runProgram, type Examples } from './client-program.js';
import { P11_RELAY_EXAMPLES, p11RelayCommand, relayLink, type RelayOptions } from './relay-commands.js';
import { table } from './output.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('the port must be 1-65535.');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of 1 or more is expected.');
  return n;
}

function fingerprint(file: string): string {
  try {
    return loadServerCertificate(file).certificate.fingerprint256;
  } catch {
    return '(unreadable)';
  }
}

/** The config folder's own path for a file, relative when inside it (the folder can move). */
function recordedPath(folder: string, file: string): string {
  const rel = relative(folder, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

const program = clientProgram();

interface SlotOptions extends CommonOptions {
  server?: string;
  group?: string;
  slot: number;
  pin?: string;
}

function slotCommand(command: Command): Command {
  return common(command)
    .option('-s, --server <name>', 'server name from client.json (default: the first)')
    .option('-g, --group <name>', 'an HA group instead of a server (slot 0: its virtual slot)')
    .option('--slot <n>', 'slot number, as `verify` lists them', nonNegative, 0)
    .option('--pin <pin>', 'Crypto Officer PIN (default: $NTLS_PIN; else asked on the terminal, without echo)');
}

function clientFor(context: CommandContext, serverName: string | undefined): NtlsClient {
  const config = context.config();
  const entry = findServer(config, serverName);
  context.failure.server = entry;
  const credentials = loadClientCredentials(context.folder, config, context.logger);
  context.failure.clientName = credentials.clientName;
  const server = loadServerEndpoint(context.folder, config, entry.name, context.logger);
  return new NtlsClient({
    ...credentials, servers: [server], timeoutMs: config.receiveTimeout * 1000,
    tcpKeepalive: { enabled: config.tcpKeepalive.enabled, idleSeconds: config.tcpKeepalive.idle },
  });
}

/** Opens a session on the slot (logged in when a PIN is there), runs `body`, closes. */
/** `login`: true needs the Crypto Officer PIN, false logs in when one is given (--pin, NTLS_PIN), 'never' does not log in. */
async function withToken(context: CommandContext, options: SlotOptions, login: boolean | 'never', body: (token: TokenSession, server: string) => Promise<void>): Promise<void> {
  const pin = login === 'never' ? undefined : await pinFrom(options.pin, login);
  if (options.group !== undefined) {
    const client = NtlsClient.fromConfig({ folder: context.folder, group: options.group, logger: context.logger });
    try {
      const token = await client.openToken({ group: options.group, slot: options.slot, pin });
      await body(token, `HA group ${options.group}`);
      await token.close().catch(() => undefined);
    } finally {
      await client.close();
    }
    return;
  }
  const client = clientFor(context, options.server);
  try {
    const token = await client.openToken({ slot: options.slot, pin });
    await body(token, client.serverNames[0]!);
    await token.close().catch(() => undefined);
  } finally {
    await client.close();
  }
}

function say(context: CommandContext, json: unknown, human: string): void {
  process.stdout.write(context.json ? JSON.stringify(json, null, 2) + '\n' : human);
}

// --- certificates and servers ---------------------------------------------------------------

common(program.command('create-cert'))
  .description('make this client\'s key and self-signed certificate, and record them in client.json')
  .option('--cn <name>', 'common name, the client\'s name (default: this folder\'s client, renewed with --force; else this host name)')
  .option('--out <dir>', 'folder to write <cn>.pem and <cn>Key.pem into (default: the config folder)')
  .option('--key-type <type>', 'ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096', 'ecdsa-p256')
  .option('-f, --force', 'replace an existing certificate and key')
  .action((options: CommonOptions & { cn?: string; out?: string; keyType: CertificateKeyType; force?: boolean }) => runCommand(options, async (context) => {
    if (!['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'].includes(options.keyType)) {
      throw new ClientError('NTLS_ERR_ARGUMENT', `unknown key type ${options.keyType}`, 'use ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096');
    }
    const config = context.config();
    // This folder's client, when it has one: a renewal (--force without --cn) keeps its name.
    const current = config.client.certificate !== undefined && existsSync(resolve(context.folder, config.client.certificate)) ? config.client.name : undefined;
    const cn = options.cn ?? current ?? hostname();
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(cn)) {
      throw new ClientError('NTLS_ERR_ARGUMENT', `"${cn}" cannot name a client`, 'a common name is 1-64 letters, digits, dots, dashes or underscores');
    }
    const folder = options.out ? resolve(options.out) : context.folder;
    const certificateFile = join(folder, `${cn}.pem`);
    const keyFile = join(folder, `${cn}Key.pem`);
    if (!options.force && (existsSync(certificateFile) || existsSync(keyFile))) {
      throw new ClientError('NTLS_ERR_EXISTS', `${existsSync(keyFile) ? keyFile : certificateFile} exists already`, 'keep using it, or give --force to make a new pair (the server must then register the new certificate: ntls client renew)');
    }
    // This folder's client is another one: making a pair for a new name would switch the
    // folder's identity, and the server knows the old one.
    if (!options.force && current !== undefined && current !== cn) {
      throw new ClientError('NTLS_ERR_EXISTS', `this config folder's client is "${current}" (${resolve(context.folder, config.client.certificate!)}), not "${cn}"`,
        `keep using it; give --force to make "${cn}" this folder's client instead (its files stay), or --config-dir DIR for a second client`);
    }
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    // @peculiar/x509 and its ASN.1 schemas take 120 ms to load: only this command needs them.
    const { createSelfSignedCertificate } = await import('../certificates/self-signed.js');
    const made = await createSelfSignedCertificate({ commonName: cn, keyType: options.keyType, usage: 'client', dnsNames: [cn] });
    writeFileAtomic(keyFile, made.keyPem, 0o600);
    writeFileAtomic(certificateFile, made.certificatePem, 0o644);
    saveClientConfig(context.folder, {
      ...config, client: { ...config.client, name: cn, certificate: recordedPath(context.folder, certificateFile), key: recordedPath(context.folder, keyFile) },
    });
    const registration = cn === current
      ? `this client cannot link until the server has the new certificate: ntls client renew --client ${cn} --cert ${basename(certificateFile)}\n`
      : `have it registered on the server: ntls client register --client ${cn} --cert ${certificateFile} --hostname THIS-HOST\n(THIS-HOST: the address or name the server sees this host connect from)\n`;
    say(context, { certificate: certificateFile, key: keyFile, name: cn }, `certificate ${certificateFile}\nkey         ${keyFile}\n${registration}`);
  }));

common(program.command('add-server'))
  .description('add a server and the certificate it must present (copied into the config folder)')
  .requiredOption('--host <host>', 'server host name or IP address')
  .option('--port <n>', `server port (default: ${DEFAULT_NTLS_PORT}; with --replace, the port recorded)`, port)
  .requiredOption('--cert <file>', 'the server\'s certificate (server/server.pem of its home, or `ntls cert show --pem` there)')
  .option('--name <name>', 'name to use for it (default: the host)')
  .option('--replace', 'replace a server of that name: accept its new certificate or address')
  .action((options: CommonOptions & { host: string; port?: number; cert: string; name?: string; replace?: boolean }) => runCommand(options, async (context) => {
    const config = context.config();
    const name = options.name ?? options.host;
    const existing = config.servers.find((s) => s.name === name);
    // A new certificate accepted with --replace keeps the port recorded unless --port says another.
    const serverPort = options.port ?? (existing && options.replace ? existing.port : DEFAULT_NTLS_PORT);
    const entryCheck = ServerEntrySchema.safeParse({ name, host: options.host, port: serverPort, certificate: 'x' });
    if (!entryCheck.success) {
      const issues = entryCheck.error.issues;
      const issue = issues.find((i) => i.path[0] === 'host') ?? issues[0]!;
      const withPort = /^\[?([^\]]*?)\]?:(\d+)$/.exec(options.host);
      const hint = issue.path[0] !== 'host' ? 'give --name with letters, digits, dots, dashes or underscores'
        : withPort ? `give --host ${withPort[1]} --port ${withPort[2]}` : 'give a host name or an IP address';
      throw new ClientError('NTLS_ERR_ARGUMENT', `cannot add "${name}": ${issue.message}`, hint);
    }
    const { pem, certificate } = loadServerCertificate(resolve(options.cert), context.logger);
    if (existing && !options.replace) {
      throw new ClientError('NTLS_ERR_SERVER_EXISTS', `server ${name} is already added (${existing.host}:${existing.port}, certificate ${fingerprint(configPath(context.folder, existing.certificate))})`,
        'to accept a new certificate or address, add it again with --replace');
    }
    const certificateFile = join(context.folder, 'servers', `${name}.pem`);
    mkdirSync(dirname(certificateFile), { recursive: true, mode: 0o700 });
    writeFileAtomic(certificateFile, pem, 0o644);
    const entry: ServerEntry = { name, host: options.host, port: serverPort, certificate: recordedPath(context.folder, certificateFile) };
    const servers = existing ? config.servers.map((s) => (s.name === name ? entry : s)) : [...config.servers, entry];
    saveClientConfig(context.folder, { ...config, servers });
    say(context, { ...entry, fingerprint: certificate.fingerprint256, replaced: Boolean(existing) },
      `server ${name} ${existing ? 'replaced' : 'added'}: ${options.host}:${serverPort}, certificate SHA-256 ${certificate.fingerprint256}\n`);
  }));

common(program.command('delete-server'))
  .description('forget a server and its certificate')
  .requiredOption('--name <name>', 'server name (see list-servers)')
  .action((options: CommonOptions & { name: string }) => runCommand(options, async (context) => {
    const config = context.config();
    const entry = findServer(config, options.name);
    const groups = config.haGroups.filter((g) => g.members.includes(entry.name)).map((g) => g.name);
    if (groups.length) {
      throw new ClientError('NTLS_ERR_HA_MEMBER_IN_USE', `server ${entry.name} is a member of HA group(s) ${groups.join(', ')}`, `take it out first: \`ntls-client ha remove-member --group ${groups[0]} --server ${entry.name}\``);
    }
    saveClientConfig(context.folder, { ...config, servers: config.servers.filter((s) => s.name !== entry.name) });
    const file = configPath(context.folder, entry.certificate);
    if (!relative(context.folder, file).startsWith('..')) rmSync(file, { force: true });
    say(context, { deleted: entry.name }, `server ${entry.name} deleted\n`);
  }));

common(program.command('list-servers'))
  .description('list the servers this client knows')
  .action((options: CommonOptions) => runCommand(options, async (context) => {
    const rows = context.config().servers.map((s) => ({ ...s, fingerprint: fingerprint(configPath(context.folder, s.certificate)) }));
    say(context, rows, rows.length ? table(rows, ['name', 'host', 'port', 'fingerprint']) : 'no server added yet: ntls-client add-server --host H --cert server.pem\n');
  }));

common(program.command('verify'))
  .description('link to each server and list the slots this client sees: one per partition assigned to it, with the token label and the partition serial')
  .option('-s, --server <name>', 'only this server')
  .action((options: CommonOptions & { server?: string }) => runCommand(options, async (context) => {
    const config = context.config();
    const names = options.server !== undefined ? [findServer(config, options.server).name] : config.servers.map((s) => s.name);
    if (names.length === 0) findServer(config, undefined);
    const results: Array<{ server: string; host: string; port: number; ok: boolean; slots?: SlotSummary[]; code?: string; error?: string }> = [];
    for (const name of names) {
      const entry = findServer(config, name);
      try {
        const client = clientFor(context, name);
        try {
          results.push({ server: name, host: entry.host, port: entry.port, ok: true, slots: await client.listSlots() });
        } finally {
          await client.close();
        }
      } catch (error) {
        if (error instanceof ClientError && error.code !== 'NTLS_ERR_SERVER_CERT_FILE') throw error;
        const failure = explainFailure(error, { ...context.failure, server: entry });
        results.push({ server: name, host: entry.host, port: entry.port, ok: false, code: failure.code, error: failure.line });
      }
    }
    if (context.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    else {
      for (const r of results.filter((r) => r.ok)) {
        process.stdout.write(`server ${r.server} (${r.host}:${r.port}): ${r.slots!.length} slot(s)\n`);
        if (r.slots!.length === 0) {
          // Linked, so registered and from the right host: what is missing is a partition.
          process.stdout.write(`no partition is assigned to this client there; ask its administrator to run \`ntls client assign-partition --client ${context.failure.clientName ?? 'NAME'} --partition NAME\`\n`);
        }
        if (r.slots!.length) process.stdout.write(table(r.slots!.map((s) => ({ slot: s.slot, label: s.label, serial: s.serial, initialized: s.tokenInitialized ? 'yes' : 'no' })), ['slot', 'label', 'serial', 'initialized']));
      }
    }
    const failed = results.filter((r) => !r.ok);
    for (const r of failed) process.stderr.write(`ntls-client: ${r.error} [${r.code}]\n`);
    if (failed.length) {
      await context.logger.close();
      process.exit(1);
    }
  }));

// --- operations on a slot -------------------------------------------------------------------

slotCommand(program.command('list-objects'))
  .description('list the objects of a slot (private ones only with the PIN)')
  .action((options: SlotOptions) => runCommand(options, (context) => withToken(context, options, false, async (token, server) => {
    const objects = await token.listObjects();
    say(context, objects.map(({ handle, className, label, id, token: onToken, private: priv }) => ({ handle, class: className, label, id, token: onToken, private: priv })),
      objects.length
        ? table(objects.map((o) => ({ handle: o.handle, class: o.className, label: o.label, id: o.id, token: o.token ? 'yes' : 'no', private: o.private ? 'yes' : 'no' })), ['handle', 'class', 'label', 'id', 'token', 'private'])
        : `no objects visible in slot ${options.slot} of ${server}${options.pin ?? process.env.NTLS_PIN ? '' : ' (without a PIN only public ones show)'}\n`);
  })));

slotCommand(program.command('generate-key'))
  .description(`generate a key on the token: ${KEY_TYPES.join(', ')}`)
  .requiredOption('-t, --type <type>', 'key type')
  .requiredOption('-l, --label <label>', 'label of the new key (of both keys of a pair)')
  .option('--id <hex>', 'CKA_ID, in hex (a pair\'s default: the key identifier of its public key, as OpenSSL puts in certificates)')
  .option('--session-only', 'a session key, gone when the command ends (default: kept on the token)')
  .option('--extractable', 'the key may be wrapped out of the token')
  .option('--public-out <file>', 'also write the public key (PEM) of a pair')
  .action((options: SlotOptions & { type: string; label: string; id?: string; sessionOnly?: boolean; extractable?: boolean; publicOut?: string }) => runCommand(options, (context) => {
    if (!isKeyType(options.type)) throw new ClientError('NTLS_ERR_ARGUMENT', `unknown key type ${options.type}`, `use one of ${KEY_TYPES.join(', ')}`);
    if (options.id !== undefined && !/^([0-9a-fA-F]{2})+$/.test(options.id)) throw new ClientError('NTLS_ERR_ARGUMENT', `--id ${options.id} is not hex`, 'give an even number of hex digits');
    const type = options.type;
    return withToken(context, options, true, async (token, server) => {
      for (const objectClass of [CKO.PRIVATE_KEY, CKO.PUBLIC_KEY, CKO.SECRET_KEY]) {
        const same = await token.remote.findObjects(token.session, [{ type: CKA.CLASS, value: objectClass }, { type: CKA.LABEL, value: options.label }], 1);
        if (same.length) throw new ClientError('NTLS_ERR_EXISTS', `a key labelled "${options.label}" exists in slot ${options.slot} of ${server}`, 'choose another label (keys are found by label)');
      }
      const made = await token.generateKey(type, {
        label: options.label, id: options.id ? Buffer.from(options.id, 'hex') : undefined, token: !options.sessionOnly, extractable: options.extractable,
      });
      if (options.publicOut && made.publicKey !== undefined) {
        const pem = (await token.publicKey(made.publicKey)).export({ type: 'spki', format: 'pem' });
        writeOutput(options.publicOut, Buffer.from(pem));
      }
      const handles = made.secretKey !== undefined ? `secret key handle ${made.secretKey}` : `public key handle ${made.publicKey}, private key handle ${made.privateKey}, id ${made.id}`;
      say(context, { server, slot: options.slot, ...made }, `generated ${type} "${options.label}" in slot ${options.slot} of ${server}: ${handles}\n`);
    });
  }));

slotCommand(program.command('sign'))
  .description('sign a file with a private (or HMAC) key named by its label')
  .requiredOption('-l, --label <label>', 'the key\'s label')
  .requiredOption('--in <file>', 'data to sign (- for stdin)')
  .requiredOption('--out <file>', 'where to write the signature')
  .option('-m, --mechanism <name>', 'signing mechanism (default: from the key: sha256-rsa-pkcs, ecdsa-sha256, eddsa ...)')
  .option('--format <format>', 'ECDSA signatures: raw (r‖s, as PKCS#11 gives them) or der (what `openssl dgst -verify` reads)', 'raw')
  .action((options: SlotOptions & { label: string; in: string; out: string; mechanism?: string; format: string }) => runCommand(options, (context) => {
    const mechanism = options.mechanism ? signingMechanism(options.mechanism) : undefined;
    const format = signatureFormat(options.format);
    const data = readInput(options.in, 'input');
    return withToken(context, options, true, async (token) => {
      if (format === 'der') await ecdsaKeyCurve(token, options.label, [CKO.PRIVATE_KEY]);
      const produced = await token.sign(options.label, data, mechanism);
      const signature = format === 'der' ? ecdsaRawToDer(produced) : produced;
      writeOutput(options.out, signature);
      say(context, { label: options.label, bytes: data.length, signature: options.out, signatureBytes: signature.length },
        `signed ${data.length} bytes with "${options.label}": ${signature.length}-byte signature in ${options.out}\n`);
    });
  }));

slotCommand(program.command('verify-signature'))
  .description('check a signature with the public (or HMAC) key named by its label')
  .requiredOption('-l, --label <label>', 'the key\'s label')
  .requiredOption('--in <file>', 'the data that was signed (- for stdin)')
  .requiredOption('--signature <file>', 'the signature')
  .option('-m, --mechanism <name>', 'signing mechanism (default: from the key)')
  .option('--format <format>', 'ECDSA signatures: raw (r‖s) or der', 'raw')
  .action((options: SlotOptions & { label: string; in: string; signature: string; mechanism?: string; format: string }) => runCommand(options, (context) => {
    const mechanism = options.mechanism ? signingMechanism(options.mechanism) : undefined;
    const format = signatureFormat(options.format);
    const data = readInput(options.in, 'input');
    const given = readInput(options.signature, 'signature');
    return withToken(context, options, false, async (token) => {
      const signature = format === 'der' ? ecdsaDerToRaw(given, await ecdsaKeyCurve(token, options.label, [CKO.PUBLIC_KEY])) : given;
      const good = await token.verify(options.label, data, signature, mechanism);
      if (!good) throw new Pkcs11Error(CKR.SIGNATURE_INVALID, `${options.signature} is not a signature of ${options.in} by "${options.label}"`);
      say(context, { valid: true, label: options.label }, `signature valid: ${options.signature} signs ${options.in} with "${options.label}"\n`);
    });
  }));

slotCommand(program.command('export-public-key'))
  .description('write the public key of a key pair as PEM (SubjectPublicKeyInfo), found by label or id')
  .option('-l, --label <label>', 'the key\'s label')
  .option('--id <hex>', 'the key\'s CKA_ID, in hex (instead of --label)')
  .option('--out <file>', 'where to write it (default: stdout)')
  .action((options: SlotOptions & { label?: string; id?: string; out?: string }) => runCommand(options, (context) => {
    return withToken(context, options, false, async (token) => {
      const handle = await keyByLabelOrId(token, options.label, options.id, [CKO.PUBLIC_KEY]);
      const pem = String((await token.publicKey(handle)).export({ type: 'spki', format: 'pem' }));
      if (options.out) {
        writeOutput(options.out, Buffer.from(pem));
        say(context, { out: options.out, pem }, `public key of ${options.label ?? `id ${options.id}`} in ${options.out}\n`);
      } else say(context, { pem }, pem);
    });
  }));

function signatureFormat(value: string): SignatureFormat {
  if (!isSignatureFormat(value)) throw new ClientError('NTLS_ERR_ARGUMENT', `unknown signature format ${value}`, `use one of ${SIGNATURE_FORMATS.join(', ')}`);
  return value;
}

const CURVE_HALF: Record<string, number> = { '06082a8648ce3d030107': 32, '06052b81040022': 48, '06052b81040023': 66 };

/** The r and s size of the EC key labelled `label` (the first of `classes`); NTLS_ERR_ARGUMENT for another key type. */
async function ecdsaKeyCurve(token: TokenSession, label: string, classes: number[]): Promise<number> {
  const key = await token.describeKey(await token.findKey(label, classes));
  const half = key.keyType === CKK.EC && key.ecParams ? CURVE_HALF[key.ecParams.toString('hex')] : undefined;
  if (half === undefined) throw new ClientError('NTLS_ERR_ARGUMENT', `"${label}" is not an ECDSA key on P-256, P-384 or P-521, so --format der does not apply`, 'leave --format out (raw): other signatures have one encoding');
  return half;
}

/** A key by label, else by CKA_ID (hex), among `classes`. */
async function keyByLabelOrId(token: TokenSession, label: string | undefined, id: string | undefined, classes: number[]): Promise<number> {
  if (label !== undefined) return token.findKey(label, classes);
  if (id === undefined || !/^([0-9a-fA-F]{2})+$/.test(id)) throw new ClientError('NTLS_ERR_ARGUMENT', 'give the key\'s --label, or its --id in hex', 'see `ntls-client list-objects`');
  for (const objectClass of classes) {
    const found = await token.remote.findObjects(token.session, [{ type: CKA.CLASS, value: objectClass }, { type: CKA.ID, value: Buffer.from(id, 'hex') }], 1);
    if (found.length) return found[0]!;
  }
  throw new ClientError('NTLS_ERR_NO_SUCH_OBJECT', `no public key with id ${id.toLowerCase()} in slot ${token.slot}`, 'see `ntls-client list-objects`');
}

function cipherOption(value: string | undefined): CipherName | undefined {
  if (value === undefined) return undefined;
  if (!isCipherName(value)) throw new ClientError('NTLS_ERR_ARGUMENT', `unknown cipher ${value}`, `use one of ${CIPHERS.join(', ')}`);
  return value;
}

slotCommand(program.command('encrypt'))
  .description('encrypt a file with an AES key or an RSA public key named by its label (the IV is written first)')
  .requiredOption('-l, --label <label>', 'the key\'s label')
  .requiredOption('--in <file>', 'plaintext (- for stdin)')
  .requiredOption('--out <file>', 'where to write the ciphertext')
  .option('-c, --cipher <name>', `${CIPHERS.join(', ')} (default: aes-gcm for AES keys, rsa-oaep for RSA)`)
  .action((options: SlotOptions & { label: string; in: string; out: string; cipher?: string }) => runCommand(options, (context) => {
    const cipher = cipherOption(options.cipher);
    const data = readInput(options.in, 'input');
    return withToken(context, options, true, async (token) => {
      const message = await token.encrypt(options.label, data, { cipher });
      writeOutput(options.out, message);
      say(context, { label: options.label, bytes: data.length, out: options.out, outBytes: message.length }, `encrypted ${data.length} bytes with "${options.label}" into ${options.out}\n`);
    });
  }));

slotCommand(program.command('decrypt'))
  .description('decrypt a file made by `encrypt` with the key named by its label')
  .requiredOption('-l, --label <label>', 'the key\'s label')
  .requiredOption('--in <file>', 'ciphertext (- for stdin)')
  .requiredOption('--out <file>', 'where to write the plaintext (owner-only)')
  .option('-c, --cipher <name>', `${CIPHERS.join(', ')} (default: from the key)`)
  .action((options: SlotOptions & { label: string; in: string; out: string; cipher?: string }) => runCommand(options, (context) => {
    const cipher = cipherOption(options.cipher);
    const message = readInput(options.in, 'input');
    return withToken(context, options, true, async (token) => {
      const data = await token.decrypt(options.label, message, { cipher });
      writeOutput(options.out, data, 0o600);
      say(context, { label: options.label, bytes: data.length, out: options.out }, `decrypted ${message.length} bytes with "${options.label}" into ${options.out}\n`);
    });
  }));

slotCommand(program.command('random'))
  .description('random bytes from the HSM')
  .requiredOption('-n, --bytes <n>', 'how many (1-65536)', positive)
  .option('--out <file>', 'write them to a file (default: hex on stdout)')
  .action((options: SlotOptions & { bytes: number; out?: string }) => runCommand(options, (context) => {
    if (options.bytes > 65536) throw new ClientError('NTLS_ERR_ARGUMENT', `${options.bytes} bytes asked`, 'ask at most 65536 at a time');
    return withToken(context, options, false, async (token) => {
      const bytes = await token.random(options.bytes);
      if (options.out) writeOutput(options.out, bytes, 0o600);
      say(context, options.out ? { bytes: bytes.length, out: options.out } : { bytes: bytes.length, hex: bytes.toString('hex') },
        options.out ? `${bytes.length} random bytes in ${options.out}\n` : bytes.toString('hex') + '\n');
    });
  }));

slotCommand(program.command('init-token'))
  .description('initialise (or re-initialise, erasing every object of) the partition of a slot, as its SO')
  .option('--so-pin <pin>', 'the partition SO\'s PIN (set by this call on a blank partition; else asked on the terminal, without echo)')
  .requiredOption('-l, --label <label>', 'the token label (up to 32 bytes; the client\'s name for the partition, not its partition name)')
  .action((options: SlotOptions & { soPin?: string; label: string }) => runCommand(options, async (context) => {
    if (Buffer.byteLength(options.label) > 32) throw new ClientError('NTLS_ERR_ARGUMENT', `the label "${options.label}" is longer than 32 bytes`, 'give a shorter --label');
    if (options.group !== undefined) throw new ClientError('NTLS_ERR_ARGUMENT', 'init-token initialises one server\'s partition, not an HA group\'s', 'give --server NAME instead of --group');
    const soPin = await soPinFrom(options.soPin);
    const client = clientFor(context, options.server);
    try {
      await client.server().initToken(options.slot, soPin, options.label);
    } finally {
      await client.close();
    }
    say(context, { slot: options.slot, label: options.label, initialized: true }, `the token in slot ${options.slot} initialised, token label "${options.label}"; set the Crypto Officer PIN with \`ntls-client init-pin\`\n`);
  }));

slotCommand(program.command('init-pin'))
  .description('as the partition SO, set (or reset and unlock) the Crypto Officer PIN')
  .option('--so-pin <pin>', 'the partition SO\'s PIN (else asked on the terminal, without echo)')
  .action((options: SlotOptions & { soPin?: string }) => runCommand(options, async (context) => {
    const soPin = await soPinFrom(options.soPin);
    const pin = (await pinFrom(options.pin, true))!;
    // The SO logs in on this session: an exported NTLS_PIN (the CO PIN being set) must not log the CO in first.
    await withToken(context, options, 'never', async (token) => {
      await token.remote.login(token.session, CKU.SO, soPin);
      try {
        await token.remote.initPin(token.session, pin);
      } finally {
        await token.remote.logout(token.session).catch(() => undefined);
      }
    });
    say(context, { slot: options.slot, userPinInitialized: true }, `Crypto Officer PIN of slot ${options.slot} set\n`);
  }));

// --- bench ----------------------------------------------------------------------------------

function connectionList(value: string): number[] {
  const counts = value.split(',').map((part) => Number(part.trim()));
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) {
    throw new InvalidArgumentError('a comma-separated list of connection counts (1-1024) is expected, e.g. 1,8,64.');
  }
  return counts;
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a number of seconds above 0 is expected.');
  return n;
}

function benchTable(result: BenchResult): string {
  const rows = result.rows.map((r) => ({
    'connections': r.connections, 'ops/s': r.opsPerSecond.toFixed(1), 'p50 ms': r.latencyMs.p50.toFixed(2), 'p90 ms': r.latencyMs.p90.toFixed(2),
    'p99 ms': r.latencyMs.p99.toFixed(2), 'signatures': r.signatures, 'errors': r.errors,
  }));
  return `${result.mechanism} with ${result.keyType ?? `"${result.label}"`} on ${result.server} slot ${result.slot}, ${result.dataBytes}-byte input\n`
    + table(rows, ['connections', 'ops/s', 'p50 ms', 'p90 ms', 'p99 ms', 'signatures', 'errors']);
}

slotCommand(program.command('bench'))
  .description('measure signing: signatures per second and latency (C_SignInit + C_Sign) over 1 or more connections')
  .option('-m, --mechanism <name>', 'signing mechanism (default: from the key: ecdsa-sha256, sha256-rsa-pkcs, eddsa ...)')
  .option('-t, --key-type <type>', `key generated for the run and destroyed after: ${KEY_TYPES.join(', ')}`, 'ec-p256')
  .option('-l, --label <label>', 'sign with this existing key instead of generating one')
  .option('-c, --connections <list>', 'connection counts measured one after the other, e.g. 1,8,64', connectionList, [1, 8])
  .option('--seconds <n>', 'length of each measurement', positiveSeconds, 5)
  .option('--count <n>', 'signatures per measurement instead of a time', positive)
  .option('--data-bytes <n>', 'bytes signed each time (32: a SHA-256 digest, as raw ecdsa takes)', positive, 32)
  .action((options: SlotOptions & { mechanism?: string; keyType: string; label?: string; connections: number[]; seconds: number; count?: number; dataBytes: number }) => runCommand(options, async (context) => {
    if (!isKeyType(options.keyType)) throw new ClientError('NTLS_ERR_ARGUMENT', `unknown key type ${options.keyType}`, `use one of ${KEY_TYPES.join(', ')}`);
    const mechanism = options.mechanism ? signingMechanism(options.mechanism) : undefined;
    const pin = (await pinFrom(options.pin, true))!;
    const terminal = process.stderr.isTTY && !context.json;
    const result = await runBench({
      client: () => clientFor(context, options.server), slot: options.slot, pin, keyType: options.keyType, label: options.label,
      mechanism, connections: options.connections, seconds: options.seconds, count: options.count, dataBytes: options.dataBytes,
      onProgress: terminal
        ? (p) => process.stderr.write(`\r${p.connections} connection(s): ${p.done} signatures, ${p.seconds.toFixed(1)} s of ${p.target}\x1b[K`)
        : undefined,
    });
    if (terminal) process.stderr.write('\r\x1b[K');
    say(context, result, benchTable(result));
    // The figures count only the signatures that were made: a script must not take them as whole.
    const failed = result.rows.reduce((sum, row) => sum + row.errors, 0);
    if (failed > 0) {
      process.stderr.write(`ntls-client: ${failed} signature(s) failed during the run; the figures count only those made\n`);
      process.exitCode = 1;
    }
  }));

// --- links ----------------------------------------------------------------------------------

common(program.command('ping'))
  .description('open a link to a server and exchange a keepalive')
  .option('--server <name|host[:port]>', 'server name from client.json (default: the first); host[:port] with --server-cert, --cert and --key')
  .option('--server-cert <file>', 'the server\'s certificate (instead of client.json)')
  .option('--cert <file>', 'this client\'s certificate (instead of client.json)')
  .option('--key <file>', 'this client\'s private key (instead of client.json)')
  .option('--name <name>', 'name sent in the identity exchange')
  .action((options: RelayOptions) => runCommand(options, async (context) => {
    const options_ = relayLink(context, options);
    const started = process.hrtime.bigint();
    const link = await openLink(options_);
    try {
      const body = encodeRequest(request('NTLS_Keepalive', {}));
      if (!body.ok) throw body.error;
      await link.request(body.value);
    } finally {
      await link.close();
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    say(context, { server: link.server.name, host: options_.host, port: options_.port, ms },
      `linked to ${options_.host}:${options_.port} (its certificate names ${link.server.name}): keepalive answered in ${ms.toFixed(1)} ms\n`);
  }));

common(program.command('module-path'))
  .description('print the absolute path of libntls-pkcs11.so, ntls\'s PKCS#11 module (for --module, MODULE_PATH, library =)')
  .action((options: CommonOptions) => runCommand(options, async (context) => {
    const path = pkcs11ModulePath();
    say(context, { path }, `${path}\n`);
  }));

p11RelayCommand(program);

program.addCommand(haCommands(common));

// An example for each command's --help: the line a first user would type.
const EXAMPLES: Examples = {
  'ha': ['ntls-client ha create --group payments --partition payments', 'ntls-client ha add-member --group payments --server hsm1', 'ntls-client ha show --group payments --json'],
  'bench': ['ntls-client bench -t ec-p256 -c 1,8,64 --seconds 10', 'ntls-client bench -l signing -m ecdsa --count 10000 --json'],
  'create-cert': ['ntls-client create-cert --cn app1', 'ntls-client create-cert --cn app1 --key-type rsa-3072 --force'],
  'add-server': ['ntls-client add-server --host hsm1.example --cert server.pem --name hsm1', 'ntls-client add-server --name hsm1 --host hsm1.example --cert new-server.pem --replace'],
  'delete-server': ['ntls-client delete-server --name hsm1'],
  'list-servers': ['ntls-client list-servers --json'],
  'verify': ['ntls-client verify', 'ntls-client verify --server hsm1 --json'],
  'list-objects': ['NTLS_PIN=... ntls-client list-objects --slot 0'],
  'generate-key': ['ntls-client generate-key -t ec-p256 -l signing --public-out signing.pub.pem', 'ntls-client generate-key -t aes-256 -l data-key'],
  'sign': ['ntls-client sign -l signing --in invoice.pdf --out invoice.sig', 'ntls-client sign -l signing --in invoice.pdf --out invoice.der --format der   # then: openssl dgst -sha256 -verify signing.pub.pem -signature invoice.der invoice.pdf'],
  'verify-signature': ['ntls-client verify-signature -l signing --in invoice.pdf --signature invoice.sig'],
  'export-public-key': ['ntls-client export-public-key -l signing --out signing.pub.pem', 'ntls-client export-public-key --id 01'],
  'encrypt': ['ntls-client encrypt -l data-key --in secret.txt --out secret.enc'],
  'decrypt': ['ntls-client decrypt -l data-key --in secret.enc --out secret.txt'],
  'random': ['ntls-client random -n 32', 'ntls-client random -n 1024 --out seed.bin'],
  'init-token': ['ntls-client init-token --slot 0 --so-pin so-secret-1 -l app1'],
  'init-pin': ['ntls-client init-pin --slot 0 --so-pin so-secret-1 --pin co-secret-1'],
  'ping': ['ntls-client ping --server hsm1', 'ntls-client ping --server hsm1.example:1792 --server-cert server.pem --cert app1.pem --key app1Key.pem'],
  'module-path': ['pkcs11-tool --module "$(ntls-client module-path)" -L'],
  ...P11_RELAY_EXAMPLES,
};
await runProgram(program, EXAMPLES);

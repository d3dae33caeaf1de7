// `ntls client|cert|config|info|service ...`: the operator's commands. Those that change the
// running service go through the daemon's admin channel so they apply live.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { callAdmin } from '../admin/client.js';
import { recordChange } from './cli-audit.js';
import { CONFIG_FILE, ConfigError, loadConfig, readConfigFile, validateConfig } from '../config/load.js';
import { bindProblem } from '../config/addresses.js';
import { ConfigSchema, ConfigShape, type Config } from '../config/schema.js';
import { missingFile } from '../files/missing-file.js';
import { resolveHome } from '../home/layout.js';
import { certificateWarnings } from '../registry/client-registry.js';
import { fields, print, table, type OutputOptions } from './output.js';
import { Exit, exitWithError, fail } from './failure.js';
import { withProgress } from './progress.js';
import { NtlsError } from '../errors/ntls-error.js';
import { migrateToPostgres, migrateToSqlite, type MigrationResult } from '../store/migrate.js';
import { join } from 'node:path';

type Common = OutputOptions & { home?: string };

async function admin<T>(options: Common, command: string, args: Record<string, unknown> = {}): Promise<T> {
  try {
    return await callAdmin<T>(resolveHome(options.home), command, args);
  } catch (error) {
    exitWithError(error);
  }
}

async function confirm(question: string, force?: boolean): Promise<void> {
  if (force) return;
  if (!process.stdin.isTTY) fail('NTLS_ERR_CONFIRMATION', 'confirmation needed and no terminal to ask on', 'add --force to confirm from a script', Exit.BadInput);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) fail('NTLS_ERR_CANCELLED', 'cancelled', 'nothing changed');
}

const withCommon = (command: Command) => command
  .option('--home <dir>', 'service home (default: $NTLS_HOME or ./ntls-home)')
  .option('--json', 'output for scripts');

/**
 * A certificate file given on the command line, checked here: missing, unreadable and malformed
 * are the same kind of failure (bad input, exit 2), told apart by their code.
 */
function readCertificateFile(file: string): string {
  if (missingFile(file)) fail('NTLS_ERR_FILE', `certificate file ${file} does not exist`, 'give the file made by `ntls-client create-cert`', Exit.BadInput);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    exitWithError(error);
  }
  try {
    new X509Certificate(text);
  } catch {
    fail('NTLS_ERR_NOT_A_CERTIFICATE', `${file} is not a certificate (PEM)`, 'give the client\'s certificate file, made with `ntls-client create-cert`', Exit.BadInput);
  }
  return text;
}

interface ClientRow { name: string; host: string | null; fingerprint: string; partitions: string[]; notAfter: string; expired: boolean; notYetValid: boolean; notBefore: string; connections: number }

/** notAfter as the table shows it: marked when past. */
const expiry = (r: ClientRow) => ({
  ...r, notAfter: r.expired ? `${r.notAfter} (EXPIRED)` : r.notYetValid ? `${r.notAfter} (NOT VALID BEFORE ${r.notBefore})` : r.notAfter,
});

const BOOLEAN_WORDS: Record<string, boolean> = { yes: true, no: false, on: true, off: false };

const legacyRsaWord = (value: unknown) => (value === null || value === undefined ? 'the module decides' : value ? 'on' : 'off');

export function registerAdminCommands(program: Command): void {
  const client = program.command('client').description('registered clients');
  withCommon(client.command('register').description('register a client by its certificate'))
    .requiredOption('-c, --client <name>', 'client name')
    .requiredOption('--cert <file>', 'the client\'s certificate (PEM)')
    .option('-n, --hostname <host>', 'host name or IP the client connects from (required while clients.ipCheck is on)')
    .option('-f, --force', 'register the certificate even if it has expired')
    .action(async (o: Common & { client: string; cert: string; hostname?: string; force?: boolean }) => {
      const certificate = readCertificateFile(o.cert);
      const result = await admin<ClientRow>(o, 'client.register', { name: o.client, certificate, host: o.hostname, force: o.force === true });
      if (result.expired) process.stderr.write(`ntls: WARNING: the certificate of ${result.name} expired on ${result.notAfter}; it cannot link until it is renewed.\n`);
      for (const warning of certificateWarnings(certificate)) process.stderr.write(`ntls: WARNING: the certificate of ${result.name}: ${warning}.\n`);
      print(result, o, (r: ClientRow) => `client ${r.name} registered (fingerprint ${r.fingerprint})\n`);
    });
  withCommon(client.command('renew').description('give a registered client its new certificate (same name, host and partitions); links made with the old one end'))
    .requiredOption('-c, --client <name>', 'client name')
    .requiredOption('--cert <file>', 'the client\'s new certificate (PEM)')
    .option('-f, --force', 'take the certificate even if it has expired')
    .action(async (o: Common & { client: string; cert: string; force?: boolean }) => {
      const certificate = readCertificateFile(o.cert);
      const result = await admin<ClientRow & { linksEnded: number }>(o, 'client.renew', { name: o.client, certificate, force: o.force === true });
      if (result.expired) process.stderr.write(`ntls: WARNING: the certificate of ${result.name} expired on ${result.notAfter}; it cannot link until it is renewed.\n`);
      for (const warning of certificateWarnings(certificate)) process.stderr.write(`ntls: WARNING: the certificate of ${result.name}: ${warning}.\n`);
      print(result, o, (r: ClientRow & { linksEnded: number }) => `client ${r.name} renewed (fingerprint ${r.fingerprint}); ${r.linksEnded} link(s) made with the old certificate end\n`);
    });
  withCommon(client.command('list').description('list registered clients'))
    .action(async (o: Common) => {
      const rows = await admin<ClientRow[]>(o, 'client.list');
      print(rows, o, (r: ClientRow[]) => table(r.map(expiry), ['name', 'host', 'partitions', 'connections', 'notAfter']));
    });
  withCommon(client.command('show').description('show one client'))
    .requiredOption('-c, --client <name>', 'client name')
    .action(async (o: Common & { client: string }) => {
      print(await admin<ClientRow>(o, 'client.show', { name: o.client }), o, (r: ClientRow) => fields(expiry(r)));
    });
  withCommon(client.command('fingerprint').description('show a client\'s certificate fingerprint (SHA-256)'))
    .requiredOption('-c, --client <name>', 'client name')
    .action(async (o: Common & { client: string }) => {
      print(await admin(o, 'client.fingerprint', { name: o.client }), o, (r: { fingerprint: string }) => `${r.fingerprint}\n`);
    });
  withCommon(client.command('hostip').description('set the host name or IP a client connects from'))
    .requiredOption('-c, --client <name>', 'client name')
    .requiredOption('-n, --hostname <host>', 'host name or IP')
    .action(async (o: Common & { client: string; hostname: string }) => {
      print(await admin(o, 'client.hostip', { name: o.client, host: o.hostname }), o, (r: ClientRow) => `client ${r.name} host set to ${r.host}\n`);
    });
  withCommon(client.command('delete').description('unregister a client; its live connections end at once'))
    .requiredOption('-c, --client <name>', 'client name')
    .option('-f, --force', 'do not ask for confirmation')
    .action(async (o: Common & { client: string; force?: boolean }) => {
      await confirm(`Unregister client ${o.client} and end its connections?`, o.force);
      print(await admin(o, 'client.delete', { name: o.client }), o,
        (r: { name: string; connectionsEnded: number }) => `client ${r.name} deleted; ${r.connectionsEnded} connection(s) ended\n`);
    });

  withCommon(client.command('assign-partition').description('give a client a partition (the client sees it as its next slot)'))
    .requiredOption('-c, --client <name>', 'client name')
    .requiredOption('-p, --partition <name|serial>', 'partition: its name or serial number (else a token label)')
    .action(async (o: Common & { client: string; partition: string }) => {
      print(await admin(o, 'client.assign-partition', { name: o.client, partition: o.partition }), o,
        (r: ClientRow) => `partition ${o.partition} assigned to ${r.name}; ${r.name}'s partitions (serial numbers, in slot order): ${r.partitions.join(', ')}\n`);
    });
  withCommon(client.command('revoke-partition').description('take a partition from a client; its sessions there end at once'))
    .requiredOption('-c, --client <name>', 'client name')
    .requiredOption('-p, --partition <name|serial>', 'partition: its name or serial number (else a token label)')
    .action(async (o: Common & { client: string; partition: string }) => {
      print(await admin(o, 'client.revoke-partition', { name: o.client, partition: o.partition }), o,
        (r: ClientRow) => `partition ${o.partition} revoked from ${r.name}; ${r.name}'s partitions (serial numbers, in slot order): ${r.partitions.join(', ') || 'none'}\n`);
    });

  const partition = program.command('partition').description('HSM partitions');
  withCommon(partition.command('create').description('create a partition'))
    .option('-n, --name <name>', 'partition name (1-32 bytes): yours, a client cannot change it')
    .option('-l, --label <label>', 'its first token label (default: the name); a client\'s C_InitToken changes it')
    .option('--so-pin <pin>', 'initialise it at once with this SO PIN (else its SO runs C_InitToken)')
    .action(async (o: Common & { name?: string; label?: string; soPin?: string }) => {
      print(await withProgress(`creating partition ${o.name ?? o.label ?? ''}`, admin(o, 'partition.create', { name: o.name ?? o.label, label: o.label, soPin: o.soPin })), o,
        (r: { name: string; serial: string }) => `partition ${r.name} created, serial ${r.serial}\n`);
    });
  withCommon(partition.command('list').description('list partitions'))
    .action(async (o: Common) => {
      const rows = await admin<Array<Record<string, unknown>>>(o, 'partition.list');
      print(rows, o, (r: never[]) => table(r, ['name', 'serial', 'label', 'initialized', 'tokenObjects', 'sessions', 'connectedClients']));
    });
  withCommon(partition.command('show').description('show one partition and its use'))
    .requiredOption('-p, --partition <name|serial>', 'partition: its name or serial number (else a token label)')
    .action(async (o: Common & { partition: string }) => print(await admin(o, 'partition.show', { partition: o.partition }), o,
      // In the words `ntls partition policy --legacy-rsa` takes.
      (r: Record<string, unknown>) => fields({ ...r, legacyRsa: legacyRsaWord(r.legacyRsa) })));
  withCommon(partition.command('delete').description('delete a partition and every object in it'))
    .requiredOption('-p, --partition <name|serial>', 'partition: its name or serial number (else a token label)')
    .option('-f, --force', 'do not ask for confirmation')
    .action(async (o: Common & { partition: string; force?: boolean }) => {
      // Which partition that is, first: an unknown or ambiguous one is refused before any question.
      const target = await admin<{ name: string; serial: string; tokenObjects: number | null }>(o, 'partition.show', { partition: o.partition });
      await confirm(`Delete partition ${target.name} (serial ${target.serial}) and its ${target.tokenObjects ?? 'unknown number of'} object(s)?`, o.force);
      print(await admin(o, 'partition.delete', { partition: target.serial }), o,
        (r: { deleted: string; objects: number }) => `partition ${r.deleted} deleted with ${r.objects} object(s)\n`);
    });

  withCommon(partition.command('policy').description('the PIN policy of the partitions (hsm.* settings; set with ntls config set, applies at restart); with --partition, that partition\'s own policy (--legacy-rsa on|off: RSA-1024 generated, 512 and more imported; in force at once)'))
    .option('-p, --partition <name|serial>', 'one partition: show its policy, or change it')
    .option('--legacy-rsa <on|off>', 'legacy RSA sizes on the partition (off by default)')
    .action(async (o: Common & { partition?: string; legacyRsa?: string }) => {
      if (o.partition !== undefined) {
        const row = o.legacyRsa === undefined
          ? await admin<Record<string, unknown>>(o, 'partition.show', { partition: o.partition })
          : await admin<Record<string, unknown>>(o, 'partition.policy', { partition: o.partition, legacyRsa: o.legacyRsa });
        const policy = { partition: row.name, serial: row.serial, legacyRsa: legacyRsaWord(row.legacyRsa) };
        print(policy, o, (r: never) => fields(r));
        return;
      }
      if (o.legacyRsa !== undefined) fail('NTLS_ERR_USAGE', '--legacy-rsa is a partition\'s setting', 'give --partition', Exit.BadInput);
      const home = resolveHome(o.home);
      let config;
      try {
        config = loadConfig(home);
      } catch (error) {
        exitWithError(error);
      }
      const policy = {
        pinMinLength: config.hsm.pinMinLength,
        pinMaxLength: config.hsm.pinMaxLength,
        maxFailedLogins: config.hsm.maxFailedLogins,
        kdf: `scrypt N=${config.hsm.kdfCost} r=8 p=1`,
        maxPartitions: config.hsm.maxPartitions,
      };
      print(policy, o, (r: never) => fields(r));
    });

  const cert = program.command('cert').description('the server certificate');
  withCommon(cert.command('show').description('show the server certificate: file, where its key is, subject, SHA-256 fingerprint, validity; --pem prints it'))
    .option('--pem', 'print the certificate itself (PEM), the file to give clients')
    .action(async (o: Common & { pem?: boolean }) => {
      const shown = await admin<{ pem: string } & Record<string, unknown>>(o, 'cert.show');
      if (o.pem && !o.json) {
        process.stdout.write(shown.pem);
        return;
      }
      const rest: Record<string, unknown> = { ...shown };
      if (!o.pem) delete rest.pem;
      print(rest, o, (r: never) => fields(r));
    });
  withCommon(cert.command('regen').description('make a new server key and certificate'))
    .option('--key-type <type>', 'ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096')
    .option('-f, --force', 'do not ask for confirmation')
    .action(async (o: Common & { keyType?: string; force?: boolean }) => {
      process.stderr.write('ntls: WARNING: every client must add the new server certificate before it can link again.\n');
      await confirm('Regenerate the server certificate?', o.force);
      print(await withProgress('generating the server key and certificate', admin(o, 'cert.regen', { keyType: o.keyType })), o,
        (r: { fingerprint: string; file: string }) => `new server certificate ${r.file}\nfingerprint ${r.fingerprint}\nnew connections use it now; give clients this file\n`);
    });

  const info = program.command('info').description('statistics of the running service');
  withCommon(info.command('show').description('show statistics: connections, bytes, requests per call with latency percentiles'))
    .action(async (o: Common) => print(await admin(o, 'info.show'), o, (r: { calls: Array<Record<string, unknown>>; workers: Array<Record<string, unknown>> } & Record<string, unknown>) => {
      const { calls, workers, ...datapath } = r;
      return fields(datapath) + '\n' + table(workers, ['index', 'role', 'pid', 'connections', 'connectionsTotal'])
        + (calls.length ? '\n' + table(calls, ['call', 'count', 'errors', 'p50ms', 'p90ms', 'p99ms']) : '');
    }));
  withCommon(info.command('reset').description('zero the counters')).action(async (o: Common) => print(await admin(o, 'info.reset'), o, () => 'statistics reset\n'));

  const service = program.command('service').description('the running service');
  withCommon(service.command('status').description('pid, address, connections')).action(async (o: Common) => print(await admin(o, 'service.status'), o, (r: never) => fields(r)));

  withCommon(service.command('restart').description('shut down and start again with the current configuration (connections end)'))
    .option('-f, --force', 'do not ask for confirmation')
    .action(async (o: Common & { force?: boolean }) => {
      await confirm('Restart the service? Every connection ends.', o.force);
      const before = await admin<{ startedAt: string }>(o, 'service.status');
      await admin(o, 'service.restart');
      const status = await withProgress('restarting', waitForRestart(resolveHome(o.home), before.startedAt));
      print(status, o, (r: never) => `restarted\n${fields(r)}`);
    });

  const config = program.command('config').description('the configuration of a home');
  withCommon(config.command('show').description('every setting: its value, default and meaning'))
    .action(async (o: Common) => {
      const home = resolveHome(o.home);
      let effective;
      try {
        effective = loadConfig(home);
      } catch (error) {
        exitWithError(error);
      }
      const rows = settings().map((s) => ({ key: s.key, value: getPath(effective, s.key), default: s.defaultValue, meaning: s.description }));
      print(rows, o, (r: typeof rows) => table(r, ['key', 'value', 'default', 'meaning']));
      // The values are the file's; a daemon started with --port or --bind listens elsewhere.
      const running = await callAdmin<{ listening: string }>(home, 'service.status', {}, 2_000).catch(() => null);
      const configured = `${effective.server.bind}:${effective.server.port}`;
      if (running && running.listening !== configured) {
        const why = effective.server.port === 0 && running.listening.startsWith(`${effective.server.bind}:`) ? 'port 0: the system chose one' : 'a --bind or --port given at its start';
        process.stderr.write(`note: the running daemon listens on ${running.listening} (${why}); the configuration says ${configured}\n`);
      }
    });
  const store = program.command('store').description('the HSM store (docs/ha.md)');
  withCommon(store.command('migrate').description('move the home\'s store into PostgreSQL (--to postgres) or back into its SQLite file (--to sqlite), all or nothing; the service stopped'))
    .requiredOption('--to <backend>', 'postgres or sqlite')
    .option('--url <url>', 'the PostgreSQL database (default: store.url)')
    .action(async (o: Common & { to: string; url?: string }) => {
      const home = resolveHome(o.home);
      if (o.to !== 'postgres' && o.to !== 'sqlite') fail('NTLS_ERR_USAGE', `--to ${o.to}: give postgres or sqlite`, undefined, Exit.BadInput);
      let configured: ReturnType<typeof loadConfig>;
      try {
        configured = loadConfig(home);
      } catch (error) {
        fail('NTLS_ERR_CONFIG', (error as Error).message, 'fix the configuration first', Exit.BadInput);
      }
      const url = o.url ?? configured.store.url;
      if (url === null) fail('NTLS_ERR_USAGE', 'no database given', 'give --url postgresql://user@host:port/database', Exit.BadInput);
      if (await callAdmin(home, 'service.status').then(() => true, () => false)) fail('NTLS_ERR_SERVICE_RUNNING', 'the service is running on this home', 'stop it first (ntls stop); nothing was changed');
      let done = 0;
      let total = 0;
      const progress = (d: number, t: number) => {
        done = d;
        total = t;
      };
      const path = join(home, 'hsm', 'hsm.db');
      const work = o.to === 'postgres' ? migrateToPostgres(path, url, progress) : migrateToSqlite(url, path, progress);
      let result: MigrationResult;
      try {
        result = await withProgress(`moving the store to ${o.to}`, work, () => (total ? `${done}/${total} objects` : ''));
      } catch (error) {
        const reason = error instanceof NtlsError ? error.message.replace(/\.$/, '') : (error as Error).message;
        fail(error instanceof NtlsError ? error.code : 'NTLS_ERR_STORE', reason, 'nothing was moved', Exit.Failed);
      }
      const file = join(home, CONFIG_FILE);
      const current = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> : {};
      const next = setPath(structuredClone(current), 'store.backend', o.to);
      if (o.to === 'postgres') setPath(next, 'store.url', url);
      writeConfigFile(home, next);
      print({ to: o.to, ...result, storeBackend: o.to }, o, () => `moved ${result.partitions} partition(s) and ${result.objects} object(s) to ${o.to}; store.backend is now ${o.to}${o.to === 'postgres' ? ` (the SQLite file ${path} was left as it was)` : ''}\n`);
    });
  withCommon(config.command('set').description('change one setting (validated; applied at next start, log.debug at once)'))
    .argument('<key>', 'setting, e.g. datapath.receiveTimeout')
    .argument('<value>', 'new value (JSON: 30, true, "text", null)')
    .action(async (key: string, raw: string, o: Common) => {
      const home = resolveHome(o.home);
      const known = settings().find((s) => s.key === key) ?? (isPartOfSetting(key) ? { key, defaultValue: undefined, description: '' } : undefined);
      if (!known) fail('NTLS_ERR_CONFIG', `unknown setting "${key}"`, 'see `ntls config show`', Exit.BadInput);
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        value = raw;
      }
      // A yes/no setting takes the words `config show` prints it with (and on/off) too.
      if (typeof known.defaultValue === 'boolean' && typeof value === 'string') value = BOOLEAN_WORDS[value.toLowerCase()] ?? value;
      const file = join(home, CONFIG_FILE);
      const current = readConfigFile(home);
      const next = setPath(structuredClone(current), key, value);
      // The whole file as the start will read it, then what the start alone would find out.
      let config: Config;
      try {
        config = validateConfig(next, file);
      } catch (error) {
        // A setting that wants another one set before it (store.backend postgres wants store.url) says which.
        if (error instanceof ConfigError) fail('NTLS_ERR_CONFIG', `"${error.key}": ${error.problem}`, error.key === key ? 'nothing changed' : `set ${error.key} first; nothing changed`, Exit.BadInput);
        throw error;
      }
      if (key === 'server.bind' || key === 'metrics.bind') {
        const problem = await bindProblem(getPath(config, key) as string);
        if (problem) fail('NTLS_ERR_CONFIG', `"${key}": ${problem}`, 'give an address of this host (0.0.0.0 or :: for all); nothing changed', Exit.BadInput);
      }
      writeConfigFile(home, next);
      await recordChange(home, 'config.set', { key, value });
      let live = false;
      if (key === 'log.debug') {
        live = await callAdmin(home, 'log.debug', { enabled: value }).then(() => true, () => false);
      }
      print({ key, value, appliedNow: live }, o, () => `${key} = ${JSON.stringify(value)}${live ? ' (applied now)' : ' (takes effect at the next start)'}\n`);
    });
}

/**
 * Replaces the home's ntls.json in one rename. A home configured before its first start (a new
 * node, docs/ha.md) is made here as the start makes it.
 */
function writeConfigFile(home: string, content: unknown): void {
  const file = join(home, CONFIG_FILE);
  mkdirSync(home, { recursive: true, mode: 0o750 });
  writeFileSync(`${file}.new`, JSON.stringify(content, null, 2) + '\n', { mode: 0o640 });
  renameSync(`${file}.new`, file);
}

/** Polls the admin channel until a daemon started after `previousStart` answers (30 s at most). */
async function waitForRestart(home: string, previousStart: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    try {
      const status = await callAdmin<Record<string, unknown>>(home, 'service.status');
      if (status.startedAt !== previousStart) return status;
    } catch {
      // Not answering yet: it is between its shutdown and its start.
    }
    if (Date.now() > deadline) fail('NTLS_ERR_RESTART_TIMEOUT', 'the service did not come back within 30 s', `read ${join(home, 'logs', 'lunalogs')}`);
  }
}

interface Setting { key: string; defaultValue: unknown; description: string }

/** Every leaf setting of the schema with its default and description. */
function settings(): Setting[] {
  const defaults = ConfigSchema.parse({}) as Record<string, unknown>;
  const out: Setting[] = [];
  const shape = ConfigShape.shape as Record<string, unknown>;
  for (const [section, sectionSchema] of Object.entries(shape)) {
    const inner = unwrap(sectionSchema) as { shape?: Record<string, unknown> };
    if (!inner.shape) continue;
    for (const [name, field] of Object.entries(inner.shape)) {
      out.push({
        key: `${section}.${name}`,
        defaultValue: (defaults[section] as Record<string, unknown>)[name],
        description: (field as { description?: string }).description ?? '',
      });
    }
  }
  return out;
}

/**
 * A field of an object-valued setting (hsm.pkcs11.module of hsm.pkcs11), which `config show`
 * shows as one row: set alone, the rest of the object stays, and the whole is validated.
 */
function isPartOfSetting(key: string): boolean {
  const [section, name, field, ...rest] = key.split('.');
  if (!section || !name || !field || rest.length > 0) return false;
  const sectionSchema = unwrap((ConfigShape.shape as Record<string, unknown>)[section]) as { shape?: Record<string, unknown> } | undefined;
  const settingSchema = unwrap(sectionSchema?.shape?.[name]) as { shape?: Record<string, unknown> } | undefined;
  return settingSchema?.shape !== undefined && Object.hasOwn(settingSchema.shape, field);
}

function unwrap(schema: unknown): unknown {
  let current = schema as { _def?: { innerType?: unknown } };
  while (current?._def?.innerType) current = current._def.innerType;
  return current;
}

function getPath(object: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], object);
}

function setPath(object: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const parts = key.split('.');
  let cursor = object;
  for (const part of parts.slice(0, -1)) {
    if (typeof cursor[part] !== 'object' || cursor[part] === null) cursor[part] = {};
    cursor = cursor[part] as Record<string, unknown>;
  }
  cursor[parts.at(-1)!] = value;
  return object;
}

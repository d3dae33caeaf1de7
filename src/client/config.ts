// The client's configuration: client.json in the client's config folder ($NTLS_CLIENT_HOME, else
// $XDG_CONFIG_HOME/ntls-client, else ~/.config/ntls-client). One schema names every setting;
// file names in it are relative to the folder unless absolute.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../files/atomic-file.js';
import { ClientError } from './errors.js';

export const CLIENT_CONFIG_FILE = 'client.json';
export const DEFAULT_NTLS_PORT = 1792;

const serverName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a server name is 1-64 letters, digits, dots, dashes or underscores');

const HOST_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const HOST_NAME = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*\\.?$`);

/** A host name (RFC 1123 labels) or an IPv4 or IPv6 address: what a TCP connect takes as host. */
export function isHost(host: string): boolean {
  return isIP(host) !== 0 || (host.length <= 253 && HOST_NAME.test(host));
}

/** host, host:port, or an IPv6 address bare, as [address] or as [address]:port; null if none of them. */
export function parseEndpoint(value: string): { host: string; port: number } | null {
  if (isIP(value) !== 0) return { host: value, port: DEFAULT_NTLS_PORT };
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(value) ?? /^([^:]+)(?::(\d+))?$/.exec(value);
  if (!match || !isHost(match[1]!)) return null;
  const port = match[2] === undefined ? DEFAULT_NTLS_PORT : Number(match[2]);
  return port >= 1 && port <= 65535 ? { host: match[1]!, port } : null;
}

export const ServerEntrySchema = z.object({
  name: serverName.describe('name commands use for this server (--server)'),
  host: z.string().refine(isHost, 'a host is a host name or an IP address, without a port (the port goes in --port)').describe('host name or IP address of the ntls server'),
  port: z.number().int().min(1).max(65535).default(DEFAULT_NTLS_PORT).describe('TCP port of the ntls server'),
  certificate: z.string().min(1).describe('file holding the server\'s certificate (PEM), as added; the only certificate accepted from it'),
}).strict();

const groupName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a group name is 1-64 letters, digits, dots, dashes or underscores');

/**
 * An HA group: servers that expose one partition (same label or serial), seen by the client as
 * one virtual slot. Members are server names of `servers`.
 */
export const HaGroupSchema = z.object({
  name: groupName.describe('name commands use for this group (--group)'),
  partition: z.string().min(1).max(64).describe('the partition every member exposes: its token label or serial number'),
  members: z.array(serverName).default([]).describe('server names (of servers[]) that expose the partition'),
  haOnly: z.boolean().default(false).describe('hide the members\' own slots: only the group\'s virtual slot is seen'),
  recoveryInterval: z.number().int().min(1).max(3600).default(10).describe('seconds between two attempts to bring a lost member back'),
  recoveryRetries: z.number().int().min(-1).max(1_000_000).default(-1).describe('attempts before a lost member is given up (-1: for ever, 0: no automatic recovery)'),
}).strict();

export const ClientConfigSchema = z.object({
  client: z.object({
    name: z.string().regex(/^[\x21-\x7e]{1,200}$/).optional().describe('name sent in the identity exchange (default: the certificate\'s CN)'),
    certificate: z.string().min(1).optional().describe('this client\'s certificate file (PEM)'),
    key: z.string().min(1).optional().describe('this client\'s private key file (PEM, readable by its owner only)'),
  }).strict().default({}),
  servers: z.array(ServerEntrySchema).default([]),
  haGroups: z.array(HaGroupSchema).default([]).describe('HA groups (ntls-client ha ...)'),
  receiveTimeout: z.number().int().min(0).max(3600).default(30).describe('seconds to wait for a server\'s answer before giving the link up (0: wait for ever)'),
  tcpKeepalive: z.object({
    enabled: z.boolean().default(true).describe('TCP keepalive probes on links'),
    idle: z.number().int().min(1).max(7200).default(60).describe('seconds of silence before the first probe'),
  }).strict().default({}),
}).strict();

export type ClientConfig = z.infer<typeof ClientConfigSchema>;
export type ServerEntry = z.infer<typeof ServerEntrySchema>;
export type HaGroupEntry = z.infer<typeof HaGroupSchema>;

/** The client's config folder, from the environment. */
export function clientHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NTLS_CLIENT_HOME) return resolve(env.NTLS_CLIENT_HOME);
  if (env.XDG_CONFIG_HOME) return join(resolve(env.XDG_CONFIG_HOME), 'ntls-client');
  return join(homedir(), '.config', 'ntls-client');
}

/** A file name from client.json, made absolute against the config folder. */
export function configPath(folder: string, file: string): string {
  return isAbsolute(file) ? file : join(folder, file);
}

export function emptyConfig(): ClientConfig {
  return ClientConfigSchema.parse({});
}

/** Reads client.json; a folder without one has the defaults (no servers, no certificate). */
export function loadClientConfig(folder: string): ClientConfig {
  const file = join(folder, CLIENT_CONFIG_FILE);
  if (!existsSync(file)) return emptyConfig();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ClientError('NTLS_ERR_CLIENT_CONFIG', `${file} is not readable JSON (${(error as Error).message})`, 'fix the file or move it away to start afresh', error);
  }
  const parsed = ClientConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join('.') || '(file)';
    const what = issue.code === 'unrecognized_keys' ? `unknown setting ${issue.keys.join(', ')}` : issue.message;
    throw new ClientError('NTLS_ERR_CLIENT_CONFIG', `${file}: ${where}: ${what}`, 'fix the setting (see docs/client.md for the known ones)');
  }
  return parsed.data;
}

/** Writes client.json whole (owner-only: it names the key file). */
export function saveClientConfig(folder: string, config: ClientConfig): void {
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(folder, CLIENT_CONFIG_FILE), JSON.stringify(ClientConfigSchema.parse(config), null, 2) + '\n', 0o600);
}

export function findServer(config: ClientConfig, name: string | undefined): ServerEntry {
  if (config.servers.length === 0) {
    throw new ClientError('NTLS_ERR_UNKNOWN_SERVER', 'no server is configured', 'add one with `ntls-client add-server --host H --cert server.pem`');
  }
  if (name === undefined) return config.servers[0]!;
  const found = config.servers.find((s) => s.name === name);
  if (!found) {
    throw new ClientError('NTLS_ERR_UNKNOWN_SERVER', `no server named "${name}" (known: ${config.servers.map((s) => s.name).join(', ')})`, 'see `ntls-client list-servers`, or add it with `ntls-client add-server`');
  }
  return found;
}

export function findGroup(config: ClientConfig, name: string): HaGroupEntry {
  const found = config.haGroups.find((g) => g.name === name);
  if (!found) {
    const known = config.haGroups.map((g) => g.name).join(', ');
    throw new ClientError('NTLS_ERR_UNKNOWN_GROUP', `no HA group named "${name}"${known ? ` (known: ${known})` : ''}`, 'see `ntls-client ha show`, or make it with `ntls-client ha create`');
  }
  return found;
}

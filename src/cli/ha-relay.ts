// `ntls-client p11-relay --group NAME` / `--ha`: the relay for HA groups, loaded by
// relay-commands.ts only when one is asked for.
import { findGroup } from '../client/config.js';
import { loadClientCredentials } from '../client/credentials.js';
import { ClientError } from '../client/errors.js';
import { HaConnection } from '../client/ha-connection.js';
import { HaGroup } from '../client/ha-group.js';
import { StatusPublisher } from '../client/ha-status.js';
import { groupSettings } from '../client/ntls-client.js';
import { serveHaRelay, serveHaStreams, servedUntilStopped } from '../client/relay.js';
import type { CommandContext } from '../client/cli-support.js';

/** What of p11-relay's options an HA relay reads. */
export interface HaRelayOptions {
  group?: string[];
  ha?: boolean;
  server?: string;
  serverCert?: string;
  cert?: string;
  key?: string;
  name?: string;
  listen?: string;
}

/** The relay for HA groups: it answers p11-kit's client itself, over the groups' members. */
export async function haRelay(context: CommandContext, options: HaRelayOptions): Promise<void> {
  if (options.server || options.serverCert || options.cert || options.key) {
    throw new ClientError('NTLS_ERR_ARGUMENT', 'an HA relay takes its servers from client.json', 'drop --server, --server-cert, --cert and --key, or drop --group/--ha');
  }
  const config = context.config();
  const entries = options.ha ? config.haGroups : (options.group ?? []).map((name) => findGroup(config, name));
  if (entries.length === 0) throw new ClientError('NTLS_ERR_UNKNOWN_GROUP', 'client.json has no HA group', 'make one with `ntls-client ha create`');
  const credentials = loadClientCredentials(context.folder, config, context.logger);
  if (options.name) credentials.clientName = options.name;
  const settings = { timeoutMs: config.receiveTimeout * 1000, tcpKeepalive: { enabled: config.tcpKeepalive.enabled, idleSeconds: config.tcpKeepalive.idle } };
  for (const entry of entries) if (entry.members.length === 0) throw new ClientError('NTLS_ERR_ARGUMENT', `HA group ${entry.name} has no member`, `add one with \`ntls-client ha add-member --group ${entry.name} --server NAME\``);
  const groups = entries.map((entry) => new HaGroup(groupSettings(context.folder, config, entry, context.logger), credentials, settings, context.logger));
  const publishers = groups.map((group) => new StatusPublisher(context.folder, group));
  const connect = () => new HaConnection(groups, credentials, settings);
  await Promise.all(groups.map((group) => group.start()));
  const finish = async () => {
    for (const group of groups) group.close();
    for (const publisher of publishers) publisher.close();
    await context.logger.close();
  };
  if (options.listen) {
    const server = await serveHaRelay(options.listen, connect);
    process.stderr.write(`ntls-client: relaying ${options.listen} to HA group(s) ${groups.map((g) => g.name).join(', ')}\n`);
    await servedUntilStopped(server);
    await finish();
    process.exit(0);
  }
  await serveHaStreams(process.stdin, process.stdout, connect());
  await finish();
  process.exit(0);
}

// `ntls-client ha ...`: HA groups in client.json (create, add-member, remove-member, set, delete,
// show). A member is checked when added: its certificate is the one added for it and it exposes
// the group's partition (with the serial of the members already there). `show` reports what
// the processes using the group (relays, applications on the library) publish, or probes the
// members when none runs.
import { Command, InvalidArgumentError } from 'commander';
import { runCommand, type CommandContext, type CommonOptions } from '../client/cli-support.js';
import { HaGroupSchema, findGroup, findServer, saveClientConfig, type ClientConfig, type HaGroupEntry } from '../client/config.js';
import { loadClientCredentials, loadServerEndpoint } from '../client/credentials.js';
import { ClientError } from '../client/errors.js';
import { explainFailure } from '../client/failure.js';
import { MemberRefusal, probeMember, type MemberStatus } from '../client/ha-group.js';
import { mergeMember, readGroupStatuses } from '../client/ha-status.js';
import type { ConnectionSettings } from '../client/rpc-connection.js';
import { table } from './output.js';

function onOff(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new InvalidArgumentError('on or off is expected.');
}

function whole(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`a whole number of ${min} or more is expected.`);
    return n;
  };
}

function say(context: CommandContext, json: unknown, human: string): void {
  process.stdout.write(context.json ? JSON.stringify(json, null, 2) + '\n' : human);
}

function connectionSettings(config: ClientConfig): ConnectionSettings {
  return { timeoutMs: config.receiveTimeout * 1000, tcpKeepalive: { enabled: config.tcpKeepalive.enabled, idleSeconds: config.tcpKeepalive.idle } };
}

function saveGroup(context: CommandContext, config: ClientConfig, group: HaGroupEntry): void {
  const checked = HaGroupSchema.parse(group);
  const exists = config.haGroups.some((g) => g.name === group.name);
  saveClientConfig(context.folder, { ...config, haGroups: exists ? config.haGroups.map((g) => (g.name === group.name ? checked : g)) : [...config.haGroups, checked] });
}

export interface MemberRow extends Omit<MemberStatus, 'slot'> {
  slot: number | null;
}

export interface GroupRow {
  group: string;
  partition: string;
  serial: string | null;
  haOnly: boolean;
  recoveryInterval: number;
  recoveryRetries: number;
  /** 'processes': figures of the running processes using the group; 'probe': each member probed now. */
  source: 'processes' | 'probe';
  processes: number[];
  members: MemberRow[];
}

/** The group's serial as its reachable members show it (null when none answers). */
async function groupSerial(context: CommandContext, config: ClientConfig, group: HaGroupEntry): Promise<string | null> {
  const credentials = loadClientCredentials(context.folder, config, context.logger);
  for (const name of group.members) {
    try {
      return (await probeMember(loadServerEndpoint(context.folder, config, name, context.logger), group.partition, null, credentials, connectionSettings(config))).serial;
    } catch {
      // That one is down or refused: try the next.
    }
  }
  return null;
}

async function showGroup(context: CommandContext, config: ClientConfig, group: HaGroupEntry): Promise<GroupRow> {
  const statuses = readGroupStatuses(context.folder, group.name);
  const base = {
    group: group.name, partition: group.partition, haOnly: group.haOnly, recoveryInterval: group.recoveryInterval, recoveryRetries: group.recoveryRetries,
  };
  if (statuses.length) {
    return {
      ...base, serial: statuses.find((s) => s.serial)?.serial ?? null, source: 'processes', processes: statuses.map((s) => s.pid),
      members: group.members.map((name) => {
        const entry = findServer(config, name);
        const merged = mergeMember(name, statuses);
        return { host: entry.host, port: entry.port, ...(merged ?? { name, state: 'unknown', slot: null, load: 0, calls: 0, failovers: 0, recoveryAttempts: 0, lastError: null }) };
      }),
    };
  }
  const credentials = loadClientCredentials(context.folder, config, context.logger);
  let serial: string | null = null;
  const members: MemberRow[] = [];
  for (const name of group.members) {
    const endpoint = loadServerEndpoint(context.folder, config, name, context.logger);
    const row: MemberRow = { name, host: endpoint.host, port: endpoint.port, state: 'up', slot: null, load: 0, calls: 0, failovers: 0, recoveryAttempts: 0, lastError: null };
    try {
      const match = await probeMember(endpoint, group.partition, serial, credentials, connectionSettings(config));
      serial ??= match.serial;
      row.slot = match.slot;
    } catch (error) {
      const failure = error instanceof MemberRefusal ? { code: error.code, line: error.message } : explainFailure(error, { server: endpoint });
      row.state = error instanceof MemberRefusal ? 'refused' : 'down';
      row.lastError = { code: failure.code, line: failure.line, at: new Date().toISOString() };
    }
    members.push(row);
  }
  return { ...base, serial, source: 'probe', processes: [], members };
}

function groupText(row: GroupRow): string {
  const head = `HA group ${row.group}: partition ${row.partition}${row.serial ? ` (serial ${row.serial})` : ''}, HA-only ${row.haOnly ? 'on' : 'off'}, `
    + `recovery every ${row.recoveryInterval} s, ${row.recoveryRetries < 0 ? 'no retry limit' : `${row.recoveryRetries} retries`}\n`
    + (row.source === 'processes' ? `as seen by process(es) ${row.processes.join(', ')}\n` : 'no process uses the group now: members probed\n');
  if (!row.members.length) return head + 'no member yet: ntls-client ha add-member --group ' + row.group + ' --server NAME\n';
  return head + table(row.members.map((m) => ({
    'member': m.name, 'address': `${m.host}:${m.port}`, 'state': m.state, 'load': m.load, 'calls': m.calls,
    // The last error stays after the member is up again: its time (UTC) says when it was.
    'last error': m.lastError ? `${m.lastError.at.slice(0, 19).replace('T', ' ')} ${m.lastError.line} [${m.lastError.code}]` : '',
  })), ['member', 'address', 'state', 'load', 'calls', 'last error']);
}

export function haCommands(common: (command: Command) => Command): Command {
  const ha = new Command('ha').description('HA groups: servers exposing one partition, seen as one virtual slot (docs/ha.md)');

  common(ha.command('create'))
    .description('make an HA group for a partition (add its members with add-member)')
    .requiredOption('-g, --group <name>', 'group name')
    .requiredOption('-p, --partition <label|serial>', 'the partition every member exposes: its token label or serial')
    .option('--ha-only <on|off>', 'show only the group\'s virtual slot, not the members\' own', onOff, false)
    .option('--recovery-interval <seconds>', 'seconds between attempts to bring a lost member back', whole(1), 10)
    .option('--recovery-retries <n>', 'attempts before a lost member is given up (-1: for ever, 0: none)', whole(-1), -1)
    .action((options: CommonOptions & { group: string; partition: string; haOnly: boolean; recoveryInterval: number; recoveryRetries: number }) => runCommand(options, async (context) => {
      const config = context.config();
      if (config.haGroups.some((g) => g.name === options.group)) {
        throw new ClientError('NTLS_ERR_EXISTS', `HA group ${options.group} exists already`, 'change it with `ntls-client ha set`, or choose another name');
      }
      const parsed = HaGroupSchema.safeParse({ name: options.group, partition: options.partition, members: [], haOnly: options.haOnly, recoveryInterval: options.recoveryInterval, recoveryRetries: options.recoveryRetries });
      if (!parsed.success) throw new ClientError('NTLS_ERR_ARGUMENT', `cannot make HA group "${options.group}": ${parsed.error.issues[0]!.message}`, 'see `ntls-client ha create --help`');
      saveGroup(context, config, parsed.data);
      say(context, parsed.data, `HA group ${options.group} made for partition ${options.partition}; add members with \`ntls-client ha add-member --group ${options.group} --server NAME\`\n`);
    }));

  common(ha.command('add-member'))
    .description('add a server (of add-server) to a group, once it is checked: its certificate, and the partition it exposes')
    .requiredOption('-g, --group <name>', 'group name')
    .requiredOption('-s, --server <name>', 'server name, as list-servers shows it')
    .action((options: CommonOptions & { group: string; server: string }) => runCommand(options, async (context) => {
      const config = context.config();
      const group = findGroup(config, options.group);
      const entry = findServer(config, options.server);
      context.failure.server = entry;
      if (group.members.includes(entry.name)) throw new ClientError('NTLS_ERR_EXISTS', `server ${entry.name} is already a member of HA group ${group.name}`, 'see `ntls-client ha show`');
      const credentials = loadClientCredentials(context.folder, config, context.logger);
      context.failure.clientName = credentials.clientName;
      const endpoint = loadServerEndpoint(context.folder, config, entry.name, context.logger);
      const serial = await groupSerial(context, config, group);
      let match;
      try {
        match = await probeMember(endpoint, group.partition, serial, credentials, connectionSettings(config));
      } catch (error) {
        if (error instanceof MemberRefusal && error.code === 'NTLS_ERR_SERVER_CERT_MISMATCH') {
          throw new ClientError('NTLS_ERR_HA_MEMBER_REFUSED', `server ${entry.name} (${entry.host}:${entry.port}) presented a certificate other than the one added for it, so it is not made a member of HA group ${group.name}`,
            `if its administrator regenerated it, accept the new one with \`ntls-client add-server --name ${entry.name} --host ${entry.host} --port ${entry.port} --cert NEW.pem --replace\`, then add the member again`);
        }
        if (error instanceof MemberRefusal) throw new ClientError('NTLS_ERR_HA_MEMBER_REFUSED', `${error.message}, so it is not made a member of HA group ${group.name}`, 'check the partition\'s assignment to this client on that server (`ntls client assign-partition`)', error);
        throw error;
      }
      saveGroup(context, config, { ...group, members: [...group.members, entry.name] });
      say(context, { group: group.name, member: entry.name, slot: match.slot, label: match.label, serial: match.serial },
        `server ${entry.name} added to HA group ${group.name}: partition ${match.label} (serial ${match.serial}) in its slot ${match.slot}\n`);
    }));

  common(ha.command('remove-member'))
    .description('take a server out of a group')
    .requiredOption('-g, --group <name>', 'group name')
    .requiredOption('-s, --server <name>', 'member server name')
    .action((options: CommonOptions & { group: string; server: string }) => runCommand(options, async (context) => {
      const config = context.config();
      const group = findGroup(config, options.group);
      if (!group.members.includes(options.server)) {
        throw new ClientError('NTLS_ERR_ARGUMENT', `server ${options.server} is not a member of HA group ${group.name} (members: ${group.members.join(', ') || 'none'})`, 'see `ntls-client ha show`');
      }
      saveGroup(context, config, { ...group, members: group.members.filter((m) => m !== options.server) });
      say(context, { group: group.name, removed: options.server }, `server ${options.server} removed from HA group ${group.name}\n`);
    }));

  common(ha.command('set'))
    .description('change a group\'s settings')
    .requiredOption('-g, --group <name>', 'group name')
    .option('--ha-only <on|off>', 'show only the group\'s virtual slot', onOff)
    .option('--recovery-interval <seconds>', 'seconds between attempts to bring a lost member back', whole(1))
    .option('--recovery-retries <n>', 'attempts before a lost member is given up (-1: for ever, 0: none)', whole(-1))
    .action((options: CommonOptions & { group: string; haOnly?: boolean; recoveryInterval?: number; recoveryRetries?: number }) => runCommand(options, async (context) => {
      const config = context.config();
      const group = findGroup(config, options.group);
      if (options.haOnly === undefined && options.recoveryInterval === undefined && options.recoveryRetries === undefined) {
        throw new ClientError('NTLS_ERR_ARGUMENT', 'nothing to set', 'give --ha-only, --recovery-interval or --recovery-retries');
      }
      const parsed = HaGroupSchema.safeParse({
        ...group,
        ...(options.haOnly !== undefined ? { haOnly: options.haOnly } : {}),
        ...(options.recoveryInterval !== undefined ? { recoveryInterval: options.recoveryInterval } : {}),
        ...(options.recoveryRetries !== undefined ? { recoveryRetries: options.recoveryRetries } : {}),
      });
      if (!parsed.success) throw new ClientError('NTLS_ERR_ARGUMENT', `cannot set HA group ${group.name}: ${parsed.error.issues[0]!.message}`, 'see `ntls-client ha set --help`');
      saveGroup(context, config, parsed.data);
      say(context, parsed.data, `HA group ${group.name}: HA-only ${parsed.data.haOnly ? 'on' : 'off'}, recovery every ${parsed.data.recoveryInterval} s, retries ${parsed.data.recoveryRetries}; relays and applications take it at their next start\n`);
    }));

  common(ha.command('delete'))
    .description('forget a group (its servers stay)')
    .requiredOption('-g, --group <name>', 'group name')
    .action((options: CommonOptions & { group: string }) => runCommand(options, async (context) => {
      const config = context.config();
      const group = findGroup(config, options.group);
      saveClientConfig(context.folder, { ...config, haGroups: config.haGroups.filter((g) => g.name !== group.name) });
      say(context, { deleted: group.name }, `HA group ${group.name} deleted\n`);
    }));

  common(ha.command('show'))
    .description('each group\'s members: state, load (calls in flight), calls answered, last error')
    .option('-g, --group <name>', 'only this group')
    .action((options: CommonOptions & { group?: string }) => runCommand(options, async (context) => {
      const config = context.config();
      const groups = options.group !== undefined ? [findGroup(config, options.group)] : config.haGroups;
      const rows: GroupRow[] = [];
      for (const group of groups) rows.push(await showGroup(context, config, group));
      say(context, rows, rows.length ? rows.map(groupText).join('\n') : 'no HA group yet: ntls-client ha create --group NAME --partition LABEL\n');
    }));

  return ha;
}

// An HA group as one client process sees it: its members (servers exposing the same partition),
// each member's state, load and last error, the choice of the least busy member, and the
// recovery of lost members. Every application of the process (the library's HaConnection, each
// program behind the relay) shares one HaGroup per group, so load and state are the process's.
// The members' links for PKCS#11 calls belong to each application (HaConnection): login and
// sessions stay per application, as on a single server.
import type { Logger } from '../log/logger.js';
import { CKF } from '../pkcs11/constants.js';
import { explainFailure } from './failure.js';
import { haMessages } from './ha-log.js';
import { LinkError } from './link.js';
import { Pkcs11Remote } from './pkcs11-remote.js';
import { RpcConnection, type ClientCredentials, type ConnectionSettings, type ServerEndpoint } from './rpc-connection.js';

/**
 * up: takes calls. down: lost, being retried every recovery interval. refused: it presented
 * another certificate than the one added, or does not expose the partition (no retry: the
 * configuration must change). failed: recovery given up after the retry count. unknown: not
 * probed yet.
 */
export type MemberState = 'unknown' | 'up' | 'down' | 'refused' | 'failed';

export interface HaGroupSettings {
  name: string;
  /** Token label or serial number of the partition every member exposes. */
  partition: string;
  members: ServerEndpoint[];
  haOnly: boolean;
  recoveryIntervalMs: number;
  /** Recovery attempts before a lost member is given up; -1: for ever; 0: none. */
  recoveryRetries: number;
}

export interface MemberError {
  code: string;
  line: string;
  at: string;
}

export interface MemberStatus {
  name: string;
  host: string;
  port: number;
  state: MemberState;
  /** The partition's slot on this member (its own numbering), once joined. */
  slot: number | null;
  /** Calls sent to this member and not answered yet (its load). */
  load: number;
  /** Calls this member answered. */
  calls: number;
  /** Calls moved away from this member when it was lost. */
  failovers: number;
  recoveryAttempts: number;
  lastError: MemberError | null;
}

export interface GroupStatus {
  group: string;
  partition: string;
  serial: string | null;
  haOnly: boolean;
  recoveryInterval: number;
  recoveryRetries: number;
  pid: number;
  updatedAt: string;
  members: MemberStatus[];
}

export interface PartitionMatch {
  slot: number;
  label: string;
  serial: string;
}

/** The slot of a server that holds the partition named by label or serial, or null. */
export async function findPartition(remote: Pkcs11Remote, partition: string): Promise<PartitionMatch | null> {
  const slots = await remote.getSlotList(true);
  for (const slot of slots) {
    const info = await remote.getTokenInfo(slot);
    if ((info.flags & CKF.TOKEN_INITIALIZED) === 0 && info.label.trim() === '') continue;
    if (info.label.trim() === partition || info.serialNumber.trim() === partition) return { slot, label: info.label.trim(), serial: info.serialNumber.trim() };
  }
  return null;
}

/** Why a member cannot be in the group although it answers; the configuration must change. */
export class MemberRefusal extends Error {
  constructor(readonly code: string, detail: string) {
    super(detail);
    this.name = 'MemberRefusal';
  }
}

/**
 * Links to a server once and checks that it can be a member: its certificate is the one added
 * (the link refuses any other), and it exposes the partition (with the group's serial, when one
 * is known). The answer is the partition's slot there; a refusal is a MemberRefusal, a server
 * that cannot be reached a LinkError.
 */
export async function probeMember(endpoint: ServerEndpoint, partition: string, serial: string | null, credentials: ClientCredentials, settings: ConnectionSettings): Promise<PartitionMatch> {
  const connection = new RpcConnection(endpoint, credentials, settings);
  try {
    const match = await findPartition(new Pkcs11Remote(connection), partition);
    if (!match) throw new MemberRefusal('NTLS_ERR_HA_MEMBER_REFUSED', `server ${endpoint.name} does not expose partition "${partition}" to this client (no slot with that label or serial)`);
    if (serial !== null && match.serial !== serial) {
      throw new MemberRefusal('NTLS_ERR_HA_MEMBER_REFUSED', `server ${endpoint.name} exposes "${partition}" with serial ${match.serial}, not the group's ${serial}: another partition`);
    }
    return match;
  } catch (error) {
    if (error instanceof LinkError && error.code === 'NTLS_ERR_SERVER_CERT_MISMATCH') {
      throw new MemberRefusal(error.code, `server ${endpoint.name} (${endpoint.host}:${endpoint.port}) presented a certificate other than the one added for it`);
    }
    throw error;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

export class HaMember {
  state: MemberState = 'unknown';
  slot: number | null = null;
  load = 0;
  calls = 0;
  failovers = 0;
  recoveryAttempts = 0;
  lastError: MemberError | null = null;
  /** When it was last chosen (a sequence number): ties of load go to the one chosen longest ago. */
  lastPicked = 0;
  timer: NodeJS.Timeout | null = null;

  constructor(readonly endpoint: ServerEndpoint) {}

  get name(): string {
    return this.endpoint.name;
  }
}

export class HaGroup {
  readonly members: HaMember[];
  serial: string | null = null;
  private picks = 0;
  private closed = false;
  private started: Promise<void> | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly settings: HaGroupSettings,
    private readonly credentials: ClientCredentials,
    private readonly connectionSettings: ConnectionSettings,
    private readonly logger?: Logger,
  ) {
    this.members = settings.members.map((endpoint) => new HaMember(endpoint));
  }

  get name(): string {
    return this.settings.name;
  }

  /** Probes every member once (at first use); members that answer join, the others are retried. */
  start(): Promise<void> {
    this.started ??= Promise.all(this.members.map((m) => this.join(m, false))).then(() => undefined);
    return this.started;
  }

  member(name: string): HaMember | undefined {
    return this.members.find((m) => m.name === name);
  }

  /** The least busy member that is up, among those not excluded; null when none is. */
  pick(exclude: ReadonlySet<string> = new Set()): HaMember | null {
    let best: HaMember | null = null;
    for (const m of this.members) {
      if (m.state !== 'up' || exclude.has(m.name)) continue;
      if (!best || m.load < best.load || (m.load === best.load && m.lastPicked < best.lastPicked)) best = m;
    }
    if (best) best.lastPicked = ++this.picks;
    return best;
  }

  /** A member's link failed: it leaves the group until a recovery attempt succeeds. */
  lost(member: HaMember, error: unknown): void {
    if (member.state !== 'up') return;
    member.state = 'down';
    const failure = this.record(member, error);
    this.logger?.log(haMessages.memberLost, { group: this.name, member: member.name, reason: failure });
    this.scheduleRecovery(member);
    this.changed();
  }

  /** A call moved from one member to another. */
  failedOver(call: string, from: HaMember, to: HaMember, error: unknown): void {
    from.failovers++;
    this.logger?.log(haMessages.failover, { group: this.name, call, from: from.name, to: to.name, reason: explainFailure(error).line });
    this.changed();
  }

  noMember(call: string, error: unknown): void {
    const reason = error === null ? 'every member is lost or refused' : explainFailure(error).line;
    this.logger?.log(haMessages.noMember, { group: this.name, call, reason });
  }

  status(): GroupStatus {
    return {
      group: this.name, partition: this.settings.partition, serial: this.serial, haOnly: this.settings.haOnly,
      recoveryInterval: this.settings.recoveryIntervalMs / 1000, recoveryRetries: this.settings.recoveryRetries,
      pid: process.pid, updatedAt: new Date().toISOString(),
      members: this.members.map((m) => ({
        name: m.name, host: m.endpoint.host, port: m.endpoint.port, state: m.state, slot: m.slot, load: m.load,
        calls: m.calls, failovers: m.failovers, recoveryAttempts: m.recoveryAttempts, lastError: m.lastError,
      })),
    };
  }

  /** Called after a change of state or counts (the relay publishes its status file then). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    for (const listener of this.listeners) listener();
  }

  close(): void {
    this.closed = true;
    for (const m of this.members) {
      if (m.timer) clearTimeout(m.timer);
      m.timer = null;
    }
  }

  private record(member: HaMember, error: unknown): string {
    const failure = error instanceof MemberRefusal ? { code: error.code, line: error.message } : explainFailure(error, { server: member.endpoint });
    member.lastError = { code: failure.code, line: failure.line, at: new Date().toISOString() };
    return failure.line;
  }

  /** One probe: up (with its slot), refused, or lost again. */
  private async join(member: HaMember, recovering: boolean): Promise<boolean> {
    try {
      const match = await probeMember(member.endpoint, this.settings.partition, this.serial, this.credentials, this.connectionSettings);
      if (this.closed) return false;
      this.serial ??= match.serial;
      member.slot = match.slot;
      member.state = 'up';
      if (recovering) this.logger?.log(haMessages.memberRecovered, { group: this.name, member: member.name, attempts: member.recoveryAttempts });
      else this.logger?.log(haMessages.memberJoined, { group: this.name, member: member.name, partition: this.settings.partition, slot: match.slot });
      member.recoveryAttempts = 0;
      this.changed();
      return true;
    } catch (error) {
      if (this.closed) return false;
      const reason = this.record(member, error);
      if (error instanceof MemberRefusal) {
        member.state = 'refused';
        this.logger?.log(haMessages.memberRefused, { group: this.name, member: member.name, reason });
      } else if (recovering) {
        this.logger?.log(haMessages.recoveryFailed, { group: this.name, member: member.name, attempt: member.recoveryAttempts, reason });
        this.scheduleRecovery(member);
      } else {
        member.state = 'down';
        this.logger?.log(haMessages.memberLost, { group: this.name, member: member.name, reason });
        this.scheduleRecovery(member);
      }
      this.changed();
      return false;
    }
  }

  private scheduleRecovery(member: HaMember): void {
    if (this.closed || member.timer) return;
    const retries = this.settings.recoveryRetries;
    if (retries >= 0 && member.recoveryAttempts >= retries) {
      member.state = 'failed';
      this.logger?.log(haMessages.recoveryGivenUp, { group: this.name, member: member.name, attempts: member.recoveryAttempts, reason: member.lastError?.line ?? 'lost' });
      return;
    }
    member.timer = setTimeout(() => {
      member.timer = null;
      member.recoveryAttempts++;
      void this.join(member, true);
    }, this.settings.recoveryIntervalMs);
    member.timer.unref();
  }
}

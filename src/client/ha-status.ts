// Where a process using an HA group (the relay, an application on the library) publishes the
// group's state as it sees it, for `ntls-client ha show`: <config folder>/ha/<group>.<pid>.json,
// rewritten (whole, atomically) at most every 200 ms after a change, removed when the process
// closes the group. A file whose process is gone is ignored.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../files/atomic-file.js';
import type { GroupStatus, HaGroup, MemberStatus } from './ha-group.js';

const WRITE_DELAY_MS = 200;

export function haStatusFolder(folder: string): string {
  return join(folder, 'ha');
}

export class StatusPublisher {
  private timer: NodeJS.Timeout | null = null;
  private readonly file: string;
  private readonly stop: () => void;
  private closed = false;

  constructor(private readonly folder: string, private readonly group: HaGroup) {
    this.file = join(haStatusFolder(folder), `${group.name}.${process.pid}.json`);
    this.stop = group.onChange(() => this.schedule());
    this.schedule();
  }

  /** Writes now (tests and `close` want the last figures on disk). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.closed) return;
    try {
      mkdirSync(haStatusFolder(this.folder), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.file, JSON.stringify(this.group.status()) + '\n', 0o600);
    } catch {
      // A status that cannot be written never stops calls.
    }
  }

  close(): void {
    this.stop();
    if (this.timer) clearTimeout(this.timer);
    this.closed = true;
    rmSync(this.file, { force: true });
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => this.flush(), WRITE_DELAY_MS);
    this.timer.unref();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The statuses published for a group by processes still running. */
export function readGroupStatuses(folder: string, group: string): GroupStatus[] {
  const dir = haStatusFolder(folder);
  if (!existsSync(dir)) return [];
  const out: GroupStatus[] = [];
  for (const file of readdirSync(dir)) {
    const match = /^(.+)\.(\d+)\.json$/.exec(file);
    if (!match || match[1] !== group) continue;
    if (!alive(Number(match[2]))) {
      rmSync(join(dir, file), { force: true });
      continue;
    }
    try {
      out.push(JSON.parse(readFileSync(join(dir, file), 'utf8')) as GroupStatus);
    } catch {
      // Being rewritten or damaged: the next look has it.
    }
  }
  return out;
}

/** One member's figures over every process: loads and counts add up, the newest state and error win. */
export function mergeMember(name: string, statuses: readonly GroupStatus[]): Omit<MemberStatus, 'host' | 'port'> | null {
  const seen = statuses
    .map((s) => ({ at: s.updatedAt, member: s.members.find((m) => m.name === name) }))
    .filter((x): x is { at: string; member: MemberStatus } => x.member !== undefined)
    .sort((a, b) => a.at.localeCompare(b.at));
  if (seen.length === 0) return null;
  const newest = seen[seen.length - 1]!.member;
  const errors = seen.map((x) => x.member.lastError).filter((e) => e !== null).sort((a, b) => a.at.localeCompare(b.at));
  return {
    name, state: newest.state, slot: newest.slot,
    load: seen.reduce((n, x) => n + x.member.load, 0),
    calls: seen.reduce((n, x) => n + x.member.calls, 0),
    failovers: seen.reduce((n, x) => n + x.member.failovers, 0),
    recoveryAttempts: newest.recoveryAttempts,
    lastError: errors[errors.length - 1] ?? null,
  };
}

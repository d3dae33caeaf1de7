// HaGroup in memory: the least busy member is chosen (ties: the one chosen longest ago), lost
// members are left out, and the client log's HA lines have the guide's shape.
import { afterEach, describe, expect, it } from 'vitest';
import { HaGroup, type HaGroupSettings } from '../../src/client/ha-group.js';
import { LinkError } from '../../src/client/link.js';
import { Logger } from '../../src/log/logger.js';

const endpoint = (name: string) => ({ name, host: '127.0.0.1', port: 1, certificatePem: '' });
const credentials = { certificatePem: '', keyPem: '', clientName: 'unit' };

function group(names: string[], extra: Partial<HaGroupSettings> = {}, logger?: Logger): HaGroup {
  const g = new HaGroup({ name: 'g', partition: 'p', members: names.map(endpoint), haOnly: false, recoveryIntervalMs: 3_600_000, recoveryRetries: -1, ...extra }, credentials, {}, logger);
  for (const m of g.members) m.state = 'up';
  return g;
}

let made: HaGroup[] = [];
afterEach(() => {
  for (const g of made) g.close();
  made = [];
});

describe('HaGroup.pick', () => {
  it('takes the member with the fewest calls in flight', () => {
    const g = group(['a', 'b', 'c']);
    g.member('a')!.load = 3;
    g.member('b')!.load = 1;
    g.member('c')!.load = 2;
    expect(g.pick()!.name).toBe('b');
    g.member('b')!.load = 5;
    expect(g.pick()!.name).toBe('c');
  });

  it('turns among members of equal load', () => {
    const g = group(['a', 'b']);
    expect([g.pick()!.name, g.pick()!.name, g.pick()!.name, g.pick()!.name]).toEqual(['a', 'b', 'a', 'b']);
  });

  it('leaves out members not up and those excluded; none left is null', () => {
    const g = group(['a', 'b', 'c']);
    g.member('a')!.state = 'down';
    g.member('b')!.state = 'refused';
    expect(g.pick()!.name).toBe('c');
    expect(g.pick(new Set(['c']))).toBeNull();
  });
});

describe('HaGroup events', () => {
  it('a lost member is logged in the guide\'s line shape, and given up at once with no retry allowed', () => {
    const lines: string[] = [];
    const logger = new Logger({});
    logger.onLine((line) => lines.push(line));
    const g = group(['a', 'b'], { recoveryRetries: 0 }, logger);
    made.push(g);
    g.lost(g.member('a')!, new LinkError('NTLS_ERR_LINK_CLOSED', 'the server closed the link', { stage: 'open' }));
    expect(g.member('a')!.state).toBe('failed');
    expect(g.member('a')!.lastError?.code).toBe('NTLS_ERR_LINK_CLOSED');
    expect(lines[0]).toMatch(/ local5 warn  NTLS \[\d+\]: warning : 0 : HA group g: member a lost: server a \(127\.0\.0\.1:1\) closed the link/);
    expect(lines[1]).toMatch(/ local5 err  NTLS \[\d+\]: error : 0 : HA group g: member a given up after 0 recovery attempt\(s\): /);
    expect(g.status().members.map((m) => m.state)).toEqual(['failed', 'up']);
  });

  it('a lost member waits for its recovery attempt (retried, not given up)', () => {
    const g = group(['a', 'b']);
    made.push(g);
    g.lost(g.member('a')!, new LinkError('NTLS_ERR_LINK_CLOSED', 'closed', { stage: 'open' }));
    expect(g.member('a')!.state).toBe('down');
    expect(g.member('a')!.timer).not.toBeNull();
    expect(g.pick()!.name).toBe('b');
  });

  it('a lost member is retried every interval up to the retry count, then given up', async () => {
    const lines: string[] = [];
    const logger = new Logger({});
    logger.onLine((line) => lines.push(line));
    const g = group(['a', 'b'], { recoveryRetries: 2, recoveryIntervalMs: 5 }, logger);
    made.push(g);
    g.lost(g.member('a')!, new LinkError('NTLS_ERR_LINK_CLOSED', 'closed', { stage: 'open' }));
    for (let i = 0; i < 400 && g.member('a')!.state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 5));
    expect(g.member('a')!.state).toBe('failed');
    expect(g.member('a')!.recoveryAttempts).toBe(2);
    expect(lines.filter((l) => /recovery attempt \d+ failed/.test(l))).toHaveLength(2);
    expect(lines.at(-1)).toContain('HA group g: member a given up after 2 recovery attempt(s)');
  });
});

// The home's own mode at start: `mkdir`'s mode applies only to a folder it makes, so a home the
// operator made (0755, 0775) is brought to 0750 with one line on stderr, and a home every user
// may write is refused before anything is written in it.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, makeHome, removeHome, runNtls, startDaemon } from '../support/daemon.js';

const homes: string[] = [];
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  for (const h of homes.splice(0)) removeHome(h);
});

function home(mode: number): string {
  const h = makeHome();
  homes.push(h);
  chmodSync(h, mode);
  return h;
}

const modeOf = (path: string) => statSync(path).mode & 0o7777;

describe('the home folder\'s mode at start', () => {
  for (const [mode, after, why] of [
    [0o755, 0o750, 'other users could list and read it'],
    [0o775, 0o750, 'its group could write in it, other users could list and read it'],
    [0o2775, 0o2750, 'its group could write in it, other users could list and read it'],
    [0o711, 0o710, 'other users could reach into it'],
  ] as const) {
    it(`${mode.toString(8).padStart(4, '0')} is made ${after.toString(8).padStart(4, '0')}, said in one line on stderr, and the daemon starts`, async () => {
      const h = home(mode);
      const daemon = await startDaemon(h);
      daemons.push(daemon);
      expect(modeOf(h)).toBe(after);
      const octal = (m: number) => m.toString(8).padStart(4, '0');
      expect(daemon.stderr.split('\n').filter((l) => l.includes('the home'))).toEqual([
        `ntls: the home ${h} was mode ${octal(mode)} (${why}); now ${octal(after)}.`,
      ]);
      expect((await daemon.stop('SIGTERM')).status).toBe(0);
    });
  }

  it('0700 and 0750 are left as they are, without a line; a new home is made 0750 at most', async () => {
    for (const mode of [0o700, 0o750]) {
      const h = home(mode);
      const daemon = await startDaemon(h);
      daemons.push(daemon);
      expect(modeOf(h)).toBe(mode);
      expect(daemon.stderr).not.toContain('the home');
      expect((await daemon.stop('SIGTERM')).status).toBe(0);
    }
    const parent = home(0o700);
    const fresh = join(parent, 'new-home');
    const daemon = await startDaemon(fresh, {}, ['--port', '0', '--bind', '127.0.0.1']);
    daemons.push(daemon);
    expect(modeOf(fresh) & ~0o750).toBe(0);
    expect(daemon.stderr).not.toContain('the home');
    expect((await daemon.stop('SIGTERM')).status).toBe(0);
  });

  it('a home every user may write (0777, 1777) is refused: exit 1, one line naming the fix, nothing written in it, its mode as it was', async () => {
    for (const mode of [0o777, 0o1777]) {
      const h = home(mode);
      const before = readdirSync(h).sort();
      const result = await runNtls(['start', '--home', h, '--quiet']);
      expect(result.status).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`ntls: the home ${h} is writable by every user (mode ${mode.toString(8).padStart(4, '0')}), so its configuration, registered clients and HSM store cannot be trusted; check that what it holds is yours, then \`chmod 750 ${h}\` and start again. [NTLS_ERR_HOME_PERMISSIONS]\n`);
      expect(readdirSync(h).sort()).toEqual(before);
      expect(existsSync(join(h, 'logs'))).toBe(false);
      expect(modeOf(h)).toBe(mode);
    }
  });
});

describe('the home\'s secrets at start', () => {
  it('an HSM store, server key or audit folder with a looser mode (restored from a copy) is made owner-only, one line each; a fresh home gets none', async () => {
    const h = home(0o750);
    const first = await startDaemon(h);
    daemons.push(first);
    expect(first.stderr).not.toContain(' was mode ');
    expect((await first.stop('SIGTERM')).status).toBe(0);
    const loosened: Array<[string, number, number, string]> = [
      [join(h, 'hsm'), 0o755, 0o700, 'its group could read it, other users could read it'],
      [join(h, 'audit'), 0o750, 0o700, 'its group could read it'],
      [join(h, 'hsm', 'hsm.db'), 0o664, 0o600, 'its group could write it, other users could read it'],
      [join(h, 'server', 'server.key'), 0o640, 0o600, 'its group could read it'],
    ];
    for (const [path, mode] of loosened) chmodSync(path, mode);
    const second = await startDaemon(h);
    daemons.push(second);
    const octal = (m: number) => m.toString(8).padStart(4, '0');
    expect(second.stderr.split('\n').filter((l) => l.includes(' was mode '))).toEqual(
      loosened.map(([path, mode, after, why]) => `ntls: ${path} was mode ${octal(mode)} (${why}); now ${octal(after)}.`));
    for (const [path, , after] of loosened) expect(modeOf(path), path).toBe(after);
    expect((await second.stop('SIGTERM')).status).toBe(0);
  });
});

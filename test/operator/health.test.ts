// docs/operations.md (health: /healthz, /readyz, ntls status --json), done for real.
// Health (issue 16): /healthz (live) and /readyz (serving: store open, listening, processor
// loaded; 503 otherwise) on the metrics port; `ntls status --json` says the same.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { Daemon, makeHome, removeHome, runNtls, startDaemon } from '../support/daemon.js';

let home: string;
let daemon: Daemon;
let port: number;

beforeAll(async () => {
  port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  home = makeHome({ metrics: { enabled: true, port } });
  daemon = await startDaemon(home);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

describe('health', () => {
  it('/healthz and /readyz on the metrics port', async () => {
    const live = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ live: true });
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ live: true, ready: true, checks: { storeOpen: true, listening: true, processorLoaded: true } });
  });

  it('ntls status --json gives the same facts; human output says yes/no', async () => {
    const json = await runNtls(['status', '--json', '--home', home]);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      running: true, pid: daemon.child.pid, home, live: true, ready: true,
      checks: { storeOpen: true, listening: true, processorLoaded: true },
    });
    const human = await runNtls(['status', '--home', home]);
    expect(human.stdout).toContain('ready (store open: yes, listening: yes, processor loaded: yes)');
  });

  it('no daemon: status --json says so, exit 3', async () => {
    const empty = makeHome();
    try {
      const result = await runNtls(['status', '--json', '--home', empty]);
      expect(result.status).toBe(3);
      expect(JSON.parse(result.stdout)).toMatchObject({ running: false, ready: false });
    } finally {
      removeHome(empty);
    }
  });

  it('/readyz stops answering 200 once a shutdown begins (503, then closed)', async () => {
    // A stop: the readiness probe answers "not ready" from the moment the shutdown begins.
    daemon.child.kill('SIGTERM');
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) {
      const status = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => 0);
      seen.push(status);
      if (status !== 200) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(seen.at(-1)).not.toBe(200);
    await daemon.exited;
  });
});

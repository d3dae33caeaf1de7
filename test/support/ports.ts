// Fixed loopback ports for servers a test starts on a port it must know beforehand or keep over a
// restart (an HA node killed -9 and started again, PostgreSQL stopped for 10 s). A port the kernel
// chose (listen on 0) and freed again is in the ephemeral range, where any bind to port 0 — every
// daemon the other test file starts meanwhile — and any outgoing connection may take it before the
// server binds or while it is down. So these ports come from below the ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), where nothing else on the machine is given a port,
// from a block of their own for each parallel test file (VITEST_POOL_ID), one after the other,
// each checked free by listening on it. Where there is no such room, the kernel's choice.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const FIRST = 10_000;
const BLOCK = 1_000;

function ephemeralLow(): number | null {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : null;
  } catch {
    return null;
  }
}

/** This process's block of ports [start, end), or null if there is no room below the ephemeral range. */
function block(): { start: number; end: number } | null {
  const low = ephemeralLow();
  const slot = Number(process.env.VITEST_POOL_ID ?? 1);
  if (low === null || !Number.isInteger(slot) || slot < 1) return null;
  const start = FIRST + (slot - 1) * BLOCK;
  return start + BLOCK <= low ? { start, end: start + BLOCK } : null;
}

const mine = block();
/** Files run one after the other in the same slot: each starts somewhere else in the block. */
let next = mine ? mine.start + Math.floor(Math.random() * BLOCK) : 0;

function listenOnce(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

/** A loopback TCP port free now and not handed out by this process before, for a server a test starts. */
export async function freePort(): Promise<number> {
  if (mine) {
    for (let tried = 0; tried < BLOCK; tried++) {
      const port = next;
      next = next + 1 >= mine.end ? mine.start : next + 1;
      if ((await listenOnce(port)) !== null) return port;
    }
  }
  const port = await listenOnce(0);
  if (port === null) throw new Error('no free loopback port');
  return port;
}

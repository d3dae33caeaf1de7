// How issue 15 is judged: OpenSC's own test runs (`pkcs11-tool --test --login`, `--test-ec`,
// `--test-fork`, `--test-threads`) through p11-kit-client.so against ntls, through the TLS relay
// and through the daemon's local socket (and ntls in front of SoftHSM2, the passthrough device),
// beside the same runs against the reference stack
// (`p11-kit server` + SoftHSM2). Each token holds the same key, made the same way. A check that
// passes on the reference and does not pass on ntls fails the test; ntls may pass more.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, removeHome } from '../support/daemon.js';
import {
  createClientCert, createPartition, explain, pkcs11Tool, registerClient, removeDir, startBackendDaemon, startE2eDaemon, startRelay, tempDir,
  type Relay, type ToolResult,
} from '../support/e2e.js';
import { TestBackend } from '../support/backends.js';
import { ReferenceServer } from '../support/reference.js';

/**
 * Checks the reference passes that ntls refuses on purpose (docs/hsm.md, "Refused on purpose").
 * Nothing else may differ.
 */
const DELIBERATE: ReadonlyArray<[RegExp, string]> = [
  [/(^| \/ )MD5(-RSA-PKCS)?$/, 'MD5 is refused: a broken hash'],
];

/**
 * Answers where ntls follows PKCS#11 and the reference does not, which pkcs11-tool reports as a
 * failure or warning; with the rule that makes ntls's answer the right one.
 */
const SPEC_OVER_REFERENCE: ReadonlyArray<[RegExp, string]> = [
  // --test-ec: C_Sign length query, C_Sign into a short buffer, then C_SignFinal (for CardOS).
  [/C_SignFinal failed: rv = CKR_OPERATION_ACTIVE/,
    'a single-part operation whose output has not been taken is still active: C_SignFinal is CKR_OPERATION_ACTIVE (PKCS#11 3.0 5.2, issue 15 item 5)'],
];

const SO_PIN = '87654321';
const PIN = '1234';

/** What one pkcs11-tool test run said: the checks that passed, and its failure lines. */
export interface Checks {
  passed: Set<string>;
  failed: string[];
}

/**
 * pkcs11-tool's test output, check by check. A line "NAME: OK" is a passed check, named by the
 * lines it sits under (a section, "testing key 0 (rsa)" ...); "ERR: ...", "error: ..." and
 * "... failed ..." lines are failures. Numbers that differ between tokens (handles, lengths of
 * random runs) are left out of failure lines so that the same failure reads the same.
 */
export function parseChecks(output: string): Checks {
  const passed = new Set<string>();
  const failed: string[] = [];
  const context: Array<{ indent: number; text: string }> = [];
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (line.trim() === '') continue;
    const indent = line.length - line.trimStart().length;
    // Keys are named by label: the order a token lists them in is its own.
    const text = line.trim().replace(/^testing key \d+ \((.*?)\).*$/, 'testing key ($1)');
    // Notes pkcs11-tool prints out of line ("-- mechanism can't be used to decrypt, skipping").
    if (text.startsWith('-- ')) continue;
    while (context.length > 0 && context[context.length - 1]!.indent >= indent) context.pop();
    const where = context.map((c) => c.text.replace(/:$/, '')).join(' / ');
    if (/^ERR:|^error:|\bfailed\b|^Aborting/i.test(text)) {
      failed.push(`${where} / ${text}`.replace(/\(0x[0-9a-f]+\)/gi, '').replace(/\b\d+\b/g, 'N'));
      continue;
    }
    const ok = /^(.*?):\s+OK\b/.exec(text);
    if (ok) passed.add(`${where} / ${ok[1]}`);
    if (text === '==> OK') passed.add(`${where} / ==> OK`);
    context.push({ indent, text });
  }
  return { passed, failed };
}

interface Target {
  name: string;
  address: () => string;
}

describe('pkcs11-tool\'s own tests through p11-kit-client.so: ntls (relay, local socket) against p11-kit server + SoftHSM2', () => {
  let reference: ReferenceServer;
  let daemon: Daemon;
  let passthrough: Daemon;
  let backend: TestBackend;
  let relay: Relay;
  let work: string;

  const targets: Target[] = [
    { name: 'reference (p11-kit server + SoftHSM2)', address: () => reference.socketPath },
    { name: 'ntls through the TLS relay', address: () => relay.socketPath },
    { name: 'ntls through the local socket', address: () => join(daemon.home, 'p11kit.sock') },
    // The passthrough device: ntls in front of SoftHSM2, the reference's own module.
    { name: 'ntls over SoftHSM2 (passthrough) through the local socket', address: () => join(passthrough.home, 'p11kit.sock') },
  ];
  const tool = (target: Target, args: string[], timeoutMs = 120_000) => pkcs11Tool(target.address(), args, { cwd: work, timeoutMs });
  const results = new Map<string, Map<string, ToolResult>>();

  beforeAll(async () => {
    work = tempDir('ntls-conformance-');
    reference = await ReferenceServer.start('conformance', SO_PIN, PIN);
    daemon = await startE2eDaemon();
    await createPartition(daemon, 'localpart');
    await createPartition(daemon, 'relaypart');
    const client = await createClientCert('conformer', work);
    await registerClient(daemon, client, 'relaypart');
    relay = await startRelay(daemon, client, join(work, 'relay.sock'));
    backend = new TestBackend('pkcs11', [{ label: 'conformance', soPin: SO_PIN }]);
    passthrough = await startBackendDaemon(backend);
  }, 120_000);

  afterAll(async () => {
    await relay?.stop();
    await daemon?.stop();
    if (daemon) removeHome(daemon.home);
    await passthrough?.stop();
    if (passthrough) removeHome(passthrough.home);
    backend?.remove();
    await reference?.stop();
    if (work) removeDir(work);
  });

  /** The token of a target, initialised and holding the same key as every other. */
  async function prepare(target: Target): Promise<string> {
    const listing = await tool(target, ['-L']);
    expect(listing.status, explain(listing)).toBe(0);
    // The first slot (ntls's local socket shows every partition: the first one is this suite's).
    const slot = '0';
    if (!target.name.startsWith('reference')) {
      const init = await tool(target, ['--slot-index', slot, '--init-token', '--label', 'conformance', '--so-pin', SO_PIN]);
      expect(init.status, explain(init)).toBe(0);
      const pin = await tool(target, ['--slot-index', slot, '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', PIN]);
      expect(pin.status, explain(pin)).toBe(0);
    }
    const user = ['--slot-index', slot, '--login', '--pin', PIN];
    // One key: pkcs11-tool --test runs every mechanism on the first key it finds and one on the
    // others, and the order a token lists keys in is its own (SoftHSM2's changes from run to run).
    for (const args of [
      ['--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa', '--id', '01'],
    ]) {
      const made = await tool(target, [...user, ...args]);
      expect(made.status, explain(made)).toBe(0);
    }
    return slot;
  }

  const RUNS: Array<[string, (slot: string) => string[]]> = [
    ['--test --login', (slot) => ['--slot-index', slot, '--test', '--login', '--pin', PIN]],
    ['--test-ec --login', (slot) => ['--slot-index', slot, '--session-rw', '--test-ec', '--login', '--pin', PIN, '--id', '99', '--key-type', 'EC:prime256v1']],
    ['--test-fork', (slot) => ['--slot-index', slot, '--test-fork']],
    ['--test-threads IN, ILGISLT0', () => ['--test-threads', 'IN', '--test-threads', 'ILGISLT0', '-L']],
  ];

  it('runs every test on every target', async () => {
    for (const target of targets) {
      const slot = await prepare(target);
      const byRun = new Map<string, ToolResult>();
      for (const [name, args] of RUNS) byRun.set(name, await tool(target, args(slot)));
      results.set(target.name, byRun);
      if (process.env.CONFORMANCE_DUMP) for (const [n, r] of byRun) console.log(`=== ${target.name} ${n} exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    }
  }, 600_000);

  it('the runs really checked something', () => {
    for (const target of targets) {
      const byRun = results.get(target.name)!;
      const test = byRun.get('--test --login')!;
      expect(parseChecks(test.stdout).passed.size, explain(test)).toBeGreaterThanOrEqual(3);
      const ec = byRun.get('--test-ec --login')!;
      expect(ec.stdout + ec.stderr, explain(ec)).toMatch(/EC/);
      const threads = byRun.get('--test-threads IN, ILGISLT0')!;
      expect(threads.stdout, explain(threads)).toMatch(/Slot 0|Available slots/);
    }
  });

  it.each(RUNS.map(([name]) => [name]))('%s: every check that passes on the reference passes on ntls, and ntls fails none the reference passes', (run) => {
    const ref = results.get(targets[0]!.name)!.get(run)!;
    const refChecks = parseChecks(ref.stdout + '\n' + ref.stderr);
    for (const target of targets.slice(1)) {
      const got = results.get(target.name)!.get(run)!;
      const checks = parseChecks(got.stdout + '\n' + got.stderr);
      const report = `${target.name}, pkcs11-tool ${run}\n--- ntls:\n${got.stdout}\n${got.stderr}\n--- reference:\n${ref.stdout}\n${ref.stderr}`;
      // Every check the reference passed, ntls passed.
      expect([...refChecks.passed].filter((c) => !checks.passed.has(c) && !DELIBERATE.some(([pattern]) => pattern.test(c))), report).toEqual([]);
      // Every failure ntls reports, the reference reports too (ntls ran no worse where both ran).
      expect(checks.failed.filter((f) => !refChecks.failed.includes(f) && !SPEC_OVER_REFERENCE.some(([pattern]) => pattern.test(f))), report).toEqual([]);
      if (ref.status === 0) expect(got.status, report).toBe(0);
    }
  });
});

// Against the real tools, when installed (Debian: p11-kit, p11-kit-modules, opensc, softhsm2):
// re-runs the capture so CI proves the codec still matches what the tools send and answer, and
// serves p11-kit-client.so from the codec alone to prove the client accepts our bytes.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKM } from '../../../src/pkcs11/constants.js';
import { SCENARIOS, captureAll, runPkcs11Tool, toolsAvailable, type ScenarioCapture } from './capture/capture.js';
import { FAKE, startCodecServer, type CodecServer } from './capture/codec-server.js';
import { loadCaptures, roundTrip } from './captured.js';

it('the real tools are installed (CI installs p11-kit, p11-kit-modules, opensc, softhsm2)', () => {
  expect(toolsAvailable()).toBe(true);
});

describe('live: pkcs11-tool -> p11-kit-client.so -> p11-kit server -> SoftHSM2', () => {
  let live: ScenarioCapture[] = [];
  const committed = new Map(loadCaptures().map((c) => [c.scenario, c]));

  beforeAll(async () => {
    live = await captureAll();
  }, 120_000);

  it('runs every scenario with the expected outcome', () => {
    expect(live.map((c) => c.scenario)).toEqual(SCENARIOS.map((s) => s.name));
    for (const [i, c] of live.entries()) expect(c.status, c.scenario).toBe(SCENARIOS[i]!.status ?? 0);
  });

  it('decodes and re-encodes every live request and answer byte for byte', () => {
    for (const c of live) for (const s of c.sessions) roundTrip(s, `live ${c.scenario}`);
  });

  it('sees the same calls as the committed fixtures (SoftHSM may list objects in another order)', () => {
    for (const c of live) {
      const fixture = committed.get(c.scenario);
      expect(fixture, `fixture for ${c.scenario}`).toBeDefined();
      const calls = (x: ScenarioCapture) => x.sessions.flatMap((s) => s.exchanges.map((e) => e.request.body.slice(0, 8))).sort();
      expect(calls(c), c.scenario).toEqual(calls(fixture!));
    }
  });
});

describe('live: p11-kit-client.so against a server made of the codec', () => {
  let dir = '';
  let server: CodecServer;
  let socketPath = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ntls-p11kit-codec-'));
    socketPath = path.join(dir, 'codec.sock');
    server = await startCodecServer(socketPath);
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pkcs11-tool -L lists our slot and token', async () => {
    const r = await runPkcs11Tool(socketPath, ['-L'], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`token label        : ${FAKE.label}`);
    expect(r.stdout).toContain(`token manufacturer : ${FAKE.manufacturer}`);
    expect(r.stdout).toContain(`serial num         : ${FAKE.serial}`);
    expect(server.requests.map((q) => q.call)).toContain('C_GetTokenInfo');
  });

  it('pkcs11-tool -I shows our library description', async () => {
    const r = await runPkcs11Tool(socketPath, ['-I'], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(FAKE.library);
  });

  it('pkcs11-tool -M lists our mechanisms through the length query', async () => {
    const r = await runPkcs11Tool(socketPath, ['-M'], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('SHA256-RSA-PKCS');
    expect(r.stdout).toContain('ECDSA');
    const lists = server.requests.filter((q) => q.call === 'C_GetMechanismList');
    expect(lists.length).toBeGreaterThanOrEqual(2);
    expect(FAKE.mechanisms).toContain(CKM.AES_ECB);
  });

  it('an unsupported call reaches the client as its CKR_ code', async () => {
    const r = await runPkcs11Tool(socketPath, ['--login', '--pin', '1234', '-O'], dir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/CKR_FUNCTION_NOT_SUPPORTED|0x54/);
  });
});

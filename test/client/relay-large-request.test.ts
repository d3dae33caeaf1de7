// A request larger than the daemon takes (datapath.maxFrameBytes, 4 MiB) or than the relay passes
// on (64 MiB): that call answers CKR_HOST_MEMORY and the program's link goes on. Before, the
// daemon logged "Client request header malformed" and closed the link, so every later call of
// the program failed.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModuleCheck, moduleCheck, moduleWorld, P11KIT_CLIENT, PIN, type ModuleWorld } from '../module/support.js';
import { ntlsClientBin } from '../support/e2e.js';

let world: ModuleWorld;
let check: string;
const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const MiB = 1024 * 1024;

beforeAll(async () => {
  world = await moduleWorld('hugo', { initialize: true });
  check = await buildModuleCheck(join(world.work, 'bin'));
});
afterAll(async () => {
  await world?.close();
});

/** module-check large-request through p11-kit-client.so, the relay on the program's pipes. */
function largeRequest(bytes: number) {
  return moduleCheck(check, P11KIT_CLIENT, ['large-request', '0', PIN, String(bytes)], {
    env: { P11_KIT_SERVER_ADDRESS: `|${process.execPath} ${ntlsClientBin} p11-relay --config-dir ${world.folder}` },
  });
}

const since = (from: number) => world.daemon.log().slice(from);

describe('a request too large to take fails alone', () => {
  it('over the daemon\'s maxFrameBytes: CKR_HOST_MEMORY, "Fail to allocate command buffer", the next call on the link is answered', async () => {
    const from = world.daemon.log().length;
    const { result, values } = await largeRequest(6 * MiB);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(values.get('large')).toBe('CKR_HOST_MEMORY');
    // The refused call ended the digest, as a failed call does (it stayed active: CKR_OPERATION_ACTIVE).
    expect(values.get('reinit')).toBe('CKR_OK');
    expect(values.get('after')).toBe(ABC_SHA256);
    const lines = since(from);
    expect(lines.filter((l) => l.includes(': Fail to allocate command buffer : 127.0.0.1/'))).toHaveLength(1);
    expect(lines.some((l) => l.includes('Client request header malformed'))).toBe(false);
    // One link served both calls.
    expect(lines.filter((l) => l.includes('NTLS Client "hugo" connected and authenticated'))).toHaveLength(1);
  });

  it('over what the relay passes on (64 MiB): the relay answers CKR_HOST_MEMORY itself; the daemon never sees it', async () => {
    const from = world.daemon.log().length;
    const { result, values } = await largeRequest(65 * MiB);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(values.get('large')).toBe('CKR_HOST_MEMORY');
    expect(values.get('after')).toBe(ABC_SHA256);
    expect(since(from).some((l) => l.includes('Fail to allocate command buffer') || l.includes('header malformed'))).toBe(false);
  });

  it('just within maxFrameBytes: served', async () => {
    const { result, values } = await largeRequest(3 * MiB);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(values.get('large')).toBe('CKR_OK');
  });
});

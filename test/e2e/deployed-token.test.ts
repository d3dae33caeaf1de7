// A PKI bundle on a USB token, end to end: a root key made in a partition is backed up to a
// token image, the token is deployed and assigned to a client, and stock pkcs11-tool signs
// with it through p11-kit-client.so and the TLS relay, logging in with the token's own PIN.
// The signature verifies with the public key read from the partition; undeploying takes the
// slot away from the client.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../support/daemon.js';
import {
  admin, createClientCert, createPartition, listedSlots, mustSucceed, openssl, pkcs11Tool, registerClient, removeDir,
  startE2eDaemon, startRelay, tempDir, type ClientFiles, type Relay,
} from '../support/e2e.js';

const SO_PIN = 'part-so-1';
const PIN = 'part-user-1';
const TOKEN_SO_PIN = 'token-so-1';
const TOKEN_PIN = 'token-user-1';

let daemon: Daemon;
let work: string;
let client: ClientFiles;
let stranger: ClientFiles;
let relay: Relay;
let strangerRelay: Relay;
let local: string;

beforeAll(async () => {
  daemon = await startE2eDaemon();
  work = tempDir();
  local = join(daemon.home, 'p11kit.sock');
  const ca = await createPartition(daemon, 'ca');
  const inCa = (args: string[]) => pkcs11Tool(local, ['--token-label', ca.label, ...args]);
  mustSucceed(await inCa(['--init-token', '--label', 'ca', '--so-pin', SO_PIN]));
  mustSucceed(await inCa(['--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', PIN]));
  mustSucceed(await inCa(['--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'root-ca', '--id', 'a1']));
  mustSucceed(await inCa(['--read-object', '--type', 'pubkey', '--id', 'a1', '-o', join(work, 'root.der')]));
  mustSucceed(await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', join(work, 'root.der'), '-out', join(work, 'root.pem')]));

  mustSucceed(await admin(daemon, 'token', 'init', '--label', 'RootCA1', '--serial', '777001', '--so-pin', TOKEN_SO_PIN, '--pin', TOKEN_PIN));
  await daemon.waitForLog('NON Deployed token RootCA1 with Serial Number 777001 inserted into slot 100!');
  mustSucceed(await admin(daemon, 'token', 'backup', '--partition', 'ca', '--token', 'RootCA1', '--partition-pin', PIN, '--token-pin', TOKEN_PIN));
  mustSucceed(await admin(daemon, 'token', 'deploy', '--token', 'RootCA1'));
  await daemon.waitForLog('Added USB token: RootCA1 with serial number: 777001 at slot: 100 and container id: 1000 to Virtual token list');

  client = await createClientCert('pki-client', join(work, 'client'));
  await registerClient(daemon, client, 'RootCA1');
  relay = await startRelay(daemon, client, join(work, 'relay.sock'));
  stranger = await createClientCert('stranger', join(work, 'stranger'));
  await registerClient(daemon, stranger, 'ca');
  strangerRelay = await startRelay(daemon, stranger, join(work, 'stranger.sock'));
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await strangerRelay?.stop();
  await daemon?.stop();
  if (work) removeDir(work);
});

const viaRelay = (args: string[]) => pkcs11Tool(relay.socketPath, args);

describe('a deployed PKI bundle token through the relay', () => {
  it('the assigned client sees the token as its one slot', async () => {
    const slots = listedSlots(mustSucceed(await viaRelay(['-L'])).stdout);
    expect(slots.map((s) => [s.label, s.serial])).toEqual([['RootCA1', '777001']]);
  });

  it('signs with the backed-up root key, logging in with the token\'s PIN; openssl verifies with the partition\'s public key', async () => {
    // Bookworm's p11-kit client passes CKM_ECDSA, not the hash-and-sign variants: the digest is made here.
    const digest = join(work, 'tbs.sha256');
    writeFileSync(digest, createHash('sha256').update('to be signed by the root\n').digest());
    const signature = join(work, 'root.sig');
    mustSucceed(await viaRelay(['--login', '--pin', TOKEN_PIN, '--sign', '-m', 'ECDSA', '--id', 'a1',
      '--signature-format', 'openssl', '-i', digest, '-o', signature]));
    const verified = mustSucceed(await openssl(['pkeyutl', '-verify', '-pubin', '-inkey', join(work, 'root.pem'), '-in', digest, '-sigfile', signature]));
    expect(verified.stdout).toContain('Signature Verified Successfully');
  });

  it('the partition\'s PIN is not the token\'s', async () => {
    const refused = await viaRelay(['--login', '--pin', PIN, '-O']);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('CKR_PIN_INCORRECT');
  });

  it('a client not assigned the token does not see it', async () => {
    const slots = listedSlots(mustSucceed(await pkcs11Tool(strangerRelay.socketPath, ['-L'])).stdout);
    expect(slots.map((s) => s.label)).toEqual(['ca']);
  });

  it('ejected while deployed, the slot goes; inserted again, it is re-deployed and signs again', async () => {
    const image = join(daemon.home, 'devices', 'RootCA1.ntlstoken');
    const away = join(work, 'RootCA1.ntlstoken');
    const from = daemon.log().length;
    renameSync(image, away);
    await daemon.waitForLog('Deployed token RootCA1 with Serial Number 777001 ejected from slot 100!', 10_000, from);
    expect((await viaRelay(['-L'])).stderr).toContain('No slots.');
    renameSync(away, image);
    await daemon.waitForLog('Re-deployed the  USB token: RootCA1 with serial number: 777001 to Virtual token list', 10_000, from);
    expect(listedSlots(mustSucceed(await viaRelay(['-L'])).stdout).map((s) => s.label)).toEqual(['RootCA1']);
    const digest = join(work, 'again.sha256');
    writeFileSync(digest, createHash('sha256').update('again').digest());
    mustSucceed(await viaRelay(['--login', '--pin', TOKEN_PIN, '--sign', '-m', 'ECDSA', '--id', 'a1', '-i', digest, '-o', join(work, 'again.sig')]));
  });

  it('undeployed, it is gone from the client\'s slots', async () => {
    mustSucceed(await admin(daemon, 'token', 'undeploy', '--token', 'RootCA1'));
    await daemon.waitForLog('USB token: RootCA1 with serial number: 777001 has been undeployed!');
    const listing = await viaRelay(['-L']);
    // pkcs11-tool ends with status 1 and "No slots." when there are none.
    expect(listing.stderr).toContain('No slots.');
    expect(listedSlots(listing.stdout)).toEqual([]);
  });
});

// The virtual token list: the guide's USB lines at their triggers (insert, eject, deploy,
// undeploy, re-deploy), slots and container ids, the deployed set surviving an eject and a
// restart, and the VToken failure lines for damaged images, with nothing else affected.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CKU } from '../../src/pkcs11/constants.js';
import { VirtualTokens, type TokenChange } from '../../src/tokens/virtual-tokens.js';
import { RW, removeHome, tempHome } from '../hsm/support.js';
import { SoftwareUnderTest } from '../support/tokens.js';
import { TOKEN_PIN, devices, digest, imageOptions, join, makeImage, recordingLogger, until } from './support.js';

let home: string;
let folder: string;
let log: ReturnType<typeof recordingLogger>;
let tokens: VirtualTokens | undefined;
let changes: TokenChange[];
const partitionSerials: string[] = [];

async function start(reservedSlots: number[] = [0, 1]): Promise<VirtualTokens> {
  tokens = await VirtualTokens.start({
    home, logger: log.logger, hsmOptions: imageOptions, settleMs: 100, intervalMs: 200,
    reservedSlots: () => reservedSlots, reservedSerials: () => partitionSerials,
  });
  changes = [];
  tokens.onChange((c) => changes.push(c));
  return tokens;
}

const has = (line: string) => log.bodies().includes(line);
const waitLine = (line: string) => until(() => has(line), 5000, `log line "${line}"`);

beforeEach(async () => {
  home = tempHome();
  folder = devices(home);
  log = recordingLogger();
  partitionSerials.length = 0;
});
afterEach(async () => {
  await tokens?.close();
  tokens = undefined;
  removeHome(home);
});

describe('insert and eject', () => {
  it('an image appearing is a NON deployed token inserted into the first free slot from 100', async () => {
    const t = await start();
    await makeImage(join(folder, 'Backup1.ntlstoken'), 'Backup1', '123456');
    await waitLine('NON Deployed token Backup1 with Serial Number 123456 inserted into slot 100!');
    expect(has('debug : 0 : Entering USBSlotHandler::MonitorSlot for slot 100')).toBe(true);
    expect(has('debug : 0 : Leaving USBSlotHandler::MonitorSlot for slot 100')).toBe(true);
    expect(t.list()).toMatchObject([{ file: 'Backup1.ntlstoken', slot: 100, container: 1000, label: 'Backup1', serial: '123456', state: 'inserted' }]);
    renameSync(join(folder, 'Backup1.ntlstoken'), join(home, 'away.ntlstoken'));
    await waitLine('NON Deployed token Backup1 with Serial Number 123456 ejected from slot 100!');
    expect(t.list()).toEqual([]);
    expect(t.deployed()).toEqual([]);
  });

  it('a token without a label gets the "with no label" lines', async () => {
    await start();
    await makeImage(join(folder, 'nolabel.ntlstoken'), '', '777');
    await waitLine('NON Deployed token with no label and Serial Number 777 inserted into slot 100!');
    renameSync(join(folder, 'nolabel.ntlstoken'), join(home, 'nolabel.ntlstoken'));
    await waitLine('NON Deployed token with no label and Serial Number 777 ejected from slot 100!');
  });

  it('slots skip those of the partitions and stay with their device', async () => {
    const t = await start([0, 100]);
    await makeImage(join(folder, 'a.ntlstoken'), 'A', '1');
    await waitLine('NON Deployed token A with Serial Number 1 inserted into slot 101!');
    await makeImage(join(folder, 'b.ntlstoken'), 'B', '2');
    await waitLine('NON Deployed token B with Serial Number 2 inserted into slot 102!');
    renameSync(join(folder, 'a.ntlstoken'), join(home, 'a.ntlstoken'));
    await waitLine('NON Deployed token A with Serial Number 1 ejected from slot 101!');
    expect(t.list().map((r) => [r.label, r.slot, r.container])).toEqual([['B', 102, 1001]]);
  });
});

describe('deploy and undeploy', () => {
  it('deploy adds the token to the virtual token list; its HSM serves with the token\'s own PIN', async () => {
    const t = await start();
    await makeImage(join(folder, 'pki.ntlstoken'), 'RootCA1', '555');
    await t.refresh();
    await until(() => t.list().length === 1);
    const row = await t.deploy('RootCA1');
    expect(row).toMatchObject({ slot: 100, container: 1000, state: 'deployed' });
    expect(has('Added USB token: RootCA1 with serial number: 555 at slot: 100 and container id: 1000 to Virtual token list')).toBe(true);
    expect(has('debug : 0 : Created VToken for 100/1000.')).toBe(true);
    expect(changes).toEqual([{ kind: 'deployed', slot: 100, container: 1000, label: 'RootCA1', serial: '555' }]);
    const [deployed] = t.deployed();
    expect(deployed).toMatchObject({ slot: 100, container: 1000, label: 'RootCA1', serial: '555' });
    const app = new SoftwareUnderTest(deployed!.hsm).application('client');
    const s = await app.C_OpenSession(0, RW);
    await app.C_Login(s, CKU.USER, TOKEN_PIN);
    await expect(t.deploy('555')).rejects.toMatchObject({ code: 'NTLS_ERR_TOKEN_DEPLOYED' });
    expect(JSON.parse(readFileSync(join(folder, 'deployed.json'), 'utf8')).tokens).toMatchObject([{ serial: '555', slot: 100, container: 1000 }]);

    await t.undeploy('RootCA1');
    expect(has('USB token: RootCA1 with serial number: 555 has been undeployed!')).toBe(true);
    expect(changes.at(-1)).toMatchObject({ kind: 'undeployed', serial: '555' });
    expect(t.deployed()).toEqual([]);
    expect(() => app.C_OpenSession(0, RW)).toThrow();
    expect(JSON.parse(readFileSync(join(folder, 'deployed.json'), 'utf8')).tokens).toEqual([]);
    await expect(t.undeploy('RootCA1')).rejects.toMatchObject({ code: 'NTLS_ERR_TOKEN_NOT_DEPLOYED' });
    await expect(t.deploy('nobody')).rejects.toMatchObject({ code: 'NTLS_ERR_UNKNOWN_TOKEN' });
  });

  it('a deployed token ejected and inserted again is re-deployed at its slot and container', async () => {
    const t = await start();
    await makeImage(join(folder, 'b.ntlstoken'), 'Backup1', '123456');
    await t.refresh();
    await until(() => t.list().length === 1);
    await t.deploy('b');
    const [served] = t.deployed();
    let openWhenTold: boolean | null = null;
    t.onChange((c) => {
      if (c.kind !== 'ejected') return;
      try {
        served!.hsm.tokenInfo(0);
        openWhenTold = true;
      } catch {
        openWhenTold = false;
      }
    });
    renameSync(join(folder, 'b.ntlstoken'), join(home, 'b.ntlstoken'));
    await waitLine('Deployed token Backup1 with Serial Number 123456 ejected from slot 100!');
    expect(changes.at(-1)).toMatchObject({ kind: 'ejected', slot: 100 });
    expect(openWhenTold).toBe(true);
    expect(() => served!.hsm.tokenInfo(0)).toThrow();
    expect(t.deployed()).toEqual([]);
    expect(t.list()).toMatchObject([{ serial: '123456', state: 'deployed-ejected', slot: 100 }]);

    // Another token inserted meanwhile does not take the slot kept for the ejected one.
    await makeImage(join(folder, 'other.ntlstoken'), 'Other', '9');
    await waitLine('NON Deployed token Other with Serial Number 9 inserted into slot 101!');

    renameSync(join(home, 'b.ntlstoken'), join(folder, 'b.ntlstoken'));
    await waitLine('Re-deployed the  USB token: Backup1 with serial number: 123456 to Virtual token list');
    expect(has('Deployed token Backup1 with Serial Number 123456 inserted into slot 100!')).toBe(true);
    expect(changes.at(-1)).toEqual({ kind: 'redeployed', slot: 100, container: 1000, label: 'Backup1', serial: '123456' });
    expect(t.deployed().map((d) => [d.slot, d.container])).toEqual([[100, 1000]]);
  });

  it('a restart re-deploys the deployed tokens', async () => {
    let t = await start();
    await makeImage(join(folder, 'b.ntlstoken'), 'Backup1', '123456');
    await t.refresh();
    await until(() => t.list().length === 1);
    await t.deploy('123456');
    await t.close();
    log = recordingLogger();
    t = await start();
    expect(t.deployed().map((d) => [d.serial, d.slot, d.container])).toEqual([['123456', 100, 1000]]);
    expect(has('Re-deployed the  USB token: Backup1 with serial number: 123456 to Virtual token list')).toBe(true);
  });
});

describe('VToken failures', () => {
  it('a damaged image: "Unable to initialize VToken", refused, untouched, the deployed token unaffected', async () => {
    const t = await start();
    await makeImage(join(folder, 'good.ntlstoken'), 'Good', '1');
    await t.refresh();
    await until(() => t.list().length === 1);
    await t.deploy('Good');
    const junk = join(folder, 'junk.ntlstoken');
    writeFileSync(junk, randomBytes(4096));
    const before = digest(junk);
    await waitLine('error : 0xc0000002 : Unable to initialize VToken 101/1001 : RC_GENERAL_ERROR');
    expect(t.list().find((r) => r.file === 'junk.ntlstoken')).toMatchObject({ state: 'refused', problem: { code: 'NTLS_ERR_IMAGE_DAMAGED' } });
    await expect(t.deploy('junk')).rejects.toMatchObject({ code: 'NTLS_ERR_IMAGE_DAMAGED' });
    expect(log.bodies().filter((b) => b.includes('Unable to initialize VToken 101/1001'))).toHaveLength(2);
    expect(digest(junk)).toBe(before);
    const [good] = t.deployed();
    expect(good?.serial).toBe('1');
    const app = new SoftwareUnderTest(good!.hsm).application('still');
    await app.C_Login(await app.C_OpenSession(0, RW), CKU.USER, TOKEN_PIN);
    // Ejecting a refused file says nothing of a token: there was none.
    renameSync(junk, join(home, 'junk.ntlstoken'));
    await until(() => t.list().every((r) => r.file !== 'junk.ntlstoken'));
    expect(log.bodies().some((b) => b.includes('ejected from slot 101'))).toBe(false);
  });

  it('a foreign image is refused the same way', async () => {
    const t = await start();
    const path = join(folder, 'foreign.ntlstoken');
    const db = new Database(path);
    db.exec('CREATE TABLE t (x)');
    db.close();
    await waitLine('error : 0xc0000002 : Unable to initialize VToken 100/1000 : RC_GENERAL_ERROR');
    expect(t.list()).toMatchObject([{ state: 'refused', problem: { code: 'NTLS_ERR_IMAGE_FOREIGN' } }]);
  });

  it('an image whose objects do not load: "Unable to start VToken"', async () => {
    const t = await start();
    const path = join(folder, 'broken.ntlstoken');
    await makeImage(path, 'Broken', '66');
    const db = new Database(path);
    db.prepare('INSERT INTO objects (id, partition_id, attributes, sealed) VALUES (1, 1, ?, NULL)').run(Buffer.from('not attributes'));
    db.close();
    await t.refresh();
    await until(() => t.list().length === 1);
    await expect(t.deploy('Broken')).rejects.toMatchObject({ code: 'NTLS_ERR_TOKEN_START' });
    expect(has('error : 0xc0000002 : Unable to start VToken 100/1000 : RC_GENERAL_ERROR')).toBe(true);
    expect(t.deployed()).toEqual([]);
    expect(existsSync(join(folder, 'deployed.json'))).toBe(false);
  });

  it('a token whose serial is already served: "Unable to add VToken to table"', async () => {
    const t = await start();
    partitionSerials.push('31337');
    await makeImage(join(folder, 'copy.ntlstoken'), 'Copy', '31337');
    await makeImage(join(folder, 'a.ntlstoken'), 'A', '5');
    await makeImage(join(folder, 'a2.ntlstoken'), 'A2', '5');
    await t.refresh();
    await until(() => t.list().length === 3);
    await expect(t.deploy('Copy')).rejects.toMatchObject({ code: 'NTLS_ERR_TOKEN_IN_TABLE' });
    const copy = t.list().find((r) => r.label === 'Copy')!;
    expect(has(`error : 0xc0000002 : Unable to add VToken ${copy.slot}/${copy.container} to table : RC_GENERAL_ERROR`)).toBe(true);
    await expect(t.deploy('5')).rejects.toMatchObject({ code: 'NTLS_ERR_TOKEN_AMBIGUOUS' });
    await t.deploy('a');
    await expect(t.deploy('a2')).rejects.toMatchObject({ code: 'NTLS_ERR_TOKEN_IN_TABLE' });
    expect(t.deployed().map((d) => d.label)).toEqual(['A']);
  });

  it('a deployed list that does not read stops the manager from starting, and is left as it is', async () => {
    writeFileSync(join(folder, 'deployed.json'), '{ not json');
    await expect(start()).rejects.toMatchObject({ code: 'NTLS_ERR_DEPLOYED_LIST' });
    expect(readFileSync(join(folder, 'deployed.json'), 'utf8')).toBe('{ not json');
  });
});

// C_FindObjects answers from an index by CKA_CLASS, CKA_LABEL and CKA_ID (object-table.ts):
// its result sets are exactly what a scan of every object finds, for templates naming those
// attributes and others, after objects are created, relabelled, copied and destroyed, across a
// restart (the index is rebuilt from the store), and with a cursor handed out in small batches.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Template } from '../../src/pkcs11/attributes.js';
import { CKA, CKO, CKU } from '../../src/pkcs11/constants.js';
import type { Application } from '../../src/token/index.js';
import { CO_PIN, RW, openHsm, readyHsm, removeHome, tempHome, text, type Hsm } from './support.js';

let home: string;
let hsm: Hsm;
let slot: number;
let app: Application;
let s: number;

interface Made { handle: number; label: string; token: boolean; app: string }
let made: Made[];

beforeEach(async () => {
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
  app = hsm.application('a');
  s = await app.C_OpenSession(slot, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
  made = [];
  for (let i = 0; i < 120; i++) {
    const label = `label-${i % 7}`;
    const application = i % 3 === 0 ? '' : `app-${i % 11}`;
    const token = i % 4 !== 0;
    const template: Template = [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: token }, { type: CKA.LABEL, value: text(label) },
      { type: CKA.VALUE, value: text(`v${i}`) }, ...(application ? [{ type: CKA.APPLICATION, value: text(application) }] : [])];
    const handle = await app.C_CreateObject(s, template);
    made.push({ handle, label, token, app: application });
  }
});

afterEach(() => {
  hsm.close();
  removeHome(home);
});

async function findAll(application: Application, session: number, template: Template, batch = 7): Promise<number[]> {
  await application.C_FindObjectsInit(session, template);
  const out: number[] = [];
  for (;;) {
    const next = await application.C_FindObjects(session, batch);
    if (next.length === 0) break;
    out.push(...next);
  }
  await application.C_FindObjectsFinal(session);
  return out.sort((a, b) => a - b);
}

const expected = (keep: (m: Made) => boolean) => made.filter(keep).map((m) => m.handle).sort((a, b) => a - b);

describe('C_FindObjects with the index', () => {
  it('labels, classes, labels with other attributes, and a label nobody has', async () => {
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('label-3') }])).toEqual(expected((m) => m.label === 'label-3'));
    expect(await findAll(app, s, [{ type: CKA.CLASS, value: CKO.DATA }])).toEqual(expected(() => true));
    expect(await findAll(app, s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }])).toEqual([]);
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('label-2') }, { type: CKA.TOKEN, value: true }]))
      .toEqual(expected((m) => m.label === 'label-2' && m.token));
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('label-2') }, { type: CKA.APPLICATION, value: text('app-5') }]))
      .toEqual(expected((m) => m.label === 'label-2' && m.app === 'app-5'));
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('nobody') }])).toEqual([]);
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('label-1') }, { type: CKA.CLASS, value: CKO.CERTIFICATE }])).toEqual([]);
    // A class given with the wrong shape matches nothing (as the scan did), and all objects without a template.
    expect(await findAll(app, s, [{ type: CKA.CLASS, value: text('x') }])).toEqual([]);
    expect(await findAll(app, s, [])).toEqual(expected(() => true));
  });

  it('follows relabelling, copies and destruction', async () => {
    const [a, b, c] = made.filter((m) => m.label === 'label-4');
    await app.C_SetAttributeValue(s, a!.handle, [{ type: CKA.LABEL, value: text('renamed') }]);
    a!.label = 'renamed';
    await app.C_DestroyObject(s, b!.handle);
    made = made.filter((m) => m !== b);
    const copy = await app.C_CopyObject(s, c!.handle, [{ type: CKA.LABEL, value: text('renamed') }]);
    made.push({ ...c!, handle: copy, label: 'renamed' });
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('label-4') }])).toEqual(expected((m) => m.label === 'label-4'));
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('renamed') }])).toEqual(expected((m) => m.label === 'renamed'));
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('renamed') }])).toHaveLength(2);
  });

  it('session objects are found only by their application, and go with their session', async () => {
    const other = hsm.application('b');
    const so = await other.C_OpenSession(slot, RW);
    expect(await findAll(other, so, [{ type: CKA.LABEL, value: text('label-0') }])).toEqual(expected((m) => m.label === 'label-0' && m.token));
    await app.C_CloseSession(s);
    s = await app.C_OpenSession(slot, RW);
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('label-0') }])).toEqual(expected((m) => m.label === 'label-0' && m.token));
  });

  it('a restart rebuilds the index from the store: token objects are found by label again', async () => {
    hsm.close();
    hsm = await openHsm(home);
    app = hsm.application('again');
    s = await app.C_OpenSession(slot, RW);
    expect(await findAll(app, s, [{ type: CKA.LABEL, value: text('label-6') }], 1)).toEqual(expected((m) => m.label === 'label-6' && m.token));
  });
});

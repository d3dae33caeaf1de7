// Object search over a big partition: C_FindObjectsInit + C_FindObjects (all) + C_FindObjectsFinal
// through the token model and the software HSM in this process, over 10,000 token objects, for
// the templates applications use (everything, a class, a class and key type, a label, an id).
// Figures are milliseconds per whole search; the CO is logged in (private objects are searched
// too). `--network` adds the stock path: pkcs11-tool -O (list every object with its attributes)
// through p11-kit-client.so, ntls-client p11-relay and the daemon, over 2,000 objects.
//
//   npm run bench:objects [-- --network]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoftwareHsm } from '../src/hsm/index.js';
import { singlePartMechanisms, softwareMechanisms } from '../src/hsm/mechanisms/index.js';
import type { Template } from '../src/pkcs11/attributes.js';
import { CKA, CKF, CKK, CKO, CKU } from '../src/pkcs11/constants.js';
import { TokenModel } from '../src/token/index.js';
import { idOf, labelOf, populate } from './objects/populate.js';
import { listThroughRelay } from './objects/pkcs11-tool-list.js';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 10_000);
const NETWORK_OBJECTS = Number(process.env.BENCH_NETWORK_OBJECTS ?? 2_000);
const ROUNDS = 5;
const SO_PIN = 'bench-so-pin';
const CO_PIN = 'bench-co-pin';

/** Wall-clock and this process's CPU time per whole search (the machine is shared: CPU time is the steadier figure). */
interface SearchFigure { template: string; found: number; medianMs: number; maxMs: number; medianCpuMs: number }

async function inProcess(): Promise<SearchFigure[]> {
  const home = mkdtempSync(join(tmpdir(), 'ntls-bench-find-'));
  const hsm = await SoftwareHsm.open({ home, mechanisms: softwareMechanisms, singlePartMechanisms, kdf: { cost: 1024 }, pinPolicy: { minLength: 4 } });
  try {
    const model = new TokenModel(hsm.libraryInfo);
    model.mountAll(hsm);
    const { slot } = await hsm.createPartition({ label: 'find', soPin: SO_PIN });
    model.mount(slot, hsm, slot);
    const setup = model.application('setup');
    const s = await setup.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    await setup.C_Login(s, CKU.SO, SO_PIN);
    await setup.C_InitPIN(s, CO_PIN);
    setup.finalize();
    const filled = performance.now();
    await populate(hsm, slot, { role: 'co', pin: CO_PIN }, OBJECTS);
    process.stderr.write(`${OBJECTS} objects put in in ${((performance.now() - filled) / 1000).toFixed(1)} s\n`);

    const app = model.application('bench');
    const session = await app.C_OpenSession(slot, CKF.SERIAL_SESSION);
    await app.C_Login(session, CKU.USER, CO_PIN);
    const templates: Array<[string, Template]> = [
      ['{} (every object)', []],
      ['CKA_CLASS=CKO_PRIVATE_KEY', [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }]],
      ['CKA_CLASS=CKO_PUBLIC_KEY, CKA_KEY_TYPE=CKK_EC', [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC }]],
      ['CKA_LABEL (one object)', [{ type: CKA.LABEL, value: Buffer.from(labelOf(OBJECTS - 3)) }]],
      ['CKA_CLASS=CKO_PRIVATE_KEY, CKA_ID (one pair)', [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.ID, value: idOf(OBJECTS - 4) }]],
      ['CKA_SIGN=true', [{ type: CKA.SIGN, value: true }]],
    ];
    const figures: SearchFigure[] = [];
    for (const [name, template] of templates) {
      const times: number[] = [];
      const cpu: number[] = [];
      let found = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const cpuStart = process.cpuUsage();
        const start = performance.now();
        await app.C_FindObjectsInit(session, template);
        found = 0;
        for (;;) {
          const batch = await app.C_FindObjects(session, 1000);
          found += batch.length;
          if (batch.length === 0) break;
        }
        await app.C_FindObjectsFinal(session);
        times.push(performance.now() - start);
        const used = process.cpuUsage(cpuStart);
        cpu.push((used.user + used.system) / 1000);
      }
      times.sort((a, b) => a - b);
      cpu.sort((a, b) => a - b);
      const median = (list: number[]) => round2(list[Math.floor(list.length / 2)]!);
      figures.push({ template: name, found, medianMs: median(times), maxMs: round2(times[times.length - 1]!), medianCpuMs: median(cpu) });
      process.stderr.write(`${name.padEnd(48)} ${String(found).padStart(6)} found  median ${median(times).toFixed(2)} ms (CPU ${median(cpu).toFixed(2)} ms)\n`);
    }
    app.finalize();
    model.close();
    return figures;
  } finally {
    hsm.close();
    rmSync(home, { recursive: true, force: true });
  }
}

const round2 = (value: number) => Math.round(value * 100) / 100;

async function main(): Promise<void> {
  const network = process.argv.includes('--network');
  const search = await inProcess();
  const listing = network ? await listThroughRelay(NETWORK_OBJECTS) : null;
  const result = {
    command: `npm run bench:objects${network ? ' -- --network' : ''}`,
    date: new Date().toISOString(),
    note: 'one run on a 2-core machine (the relay and pkcs11-tool share its cores with the daemon); figures are wall-clock',
    inProcess: { objects: OBJECTS, rounds: ROUNDS, searches: search },
    ...(listing ? { pkcs11ToolList: listing } : {}),
  };
  const out = process.env.BENCH_OUT;
  if (out) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

// Signing throughput through ntls's PKCS#11 passthrough on SoftHSM2, next to SoftHSM2 itself:
// the cost ntls adds for mutual TLS and per-client isolation, as ratios. Three systems, each on
// a SoftHSM2 token of its own holding the same kinds of keys, measured in one run, taking turns
// round by round so that a shared machine's changing load skews them alike:
//   - ntls, hsm.backend pkcs11 on a SoftHSM2 token (a module-host process loads SoftHSM2), over
//     mutual TLS, driven by the network bench's client (our p11-kit codec over an NTLS link);
//   - SoftHSM2 in this process through pkcs11js: C_SignInit, then C_SignAsync (pkcs11js runs it on
//     libuv's thread pool), one loop per connection each on a session of its own, so that 8 and
//     64 lanes overlap;
//   - `p11-kit server` fronting SoftHSM2 (a p11-kit-remote process per connection), the same
//     client path over a unix socket.
// Mechanisms SoftHSM2 2.6.1 has: RSA-2048 CKM_SHA256_RSA_PKCS, P-256 CKM_ECDSA over a SHA-256
// digest (it has no CKM_ECDSA_SHA256), Ed25519 CKM_EDDSA when its mechanism list has it. The
// client, the daemon, its module host and the references share this machine's cores.
//
//   npm run bench:passthrough    (BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS=1,8,64)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import pkcs11js from 'pkcs11js';
import { CKA, CKF, CKM, CKO, CKU } from '../src/pkcs11/constants.js';
import type { Attribute } from '../src/protocol/p11kit/index.js';
import { SoftHsm, type SoftHsmToken } from '../test/support/softhsm.js';
import {
  benchSettings, childProcesses, cores, describeSettings, interleaved, num, packageVersions, pad, ratio, recorded, recordedRatio, recordHeader, writeRecord,
  type Lane, type Window,
} from './network/measure.js';
import { NtlsDaemon, NTLS_PARTITION, NTLS_SO_PIN, NTLS_USER_PIN } from './network/ntls-daemon.js';
import { SOFTHSM_MODULE, SoftHsmServer, SOFTHSM_USER_PIN } from './network/softhsm-server.js';
import { generateByRecipe, KEY_LABELS, KEY_RECIPES, readyServer, signLane, type KeyName, type Signing, type TokenConnection } from './network/token.js';

const settings = benchSettings();
const resultsFile = fileURLToPath(new URL('../../bench/results/passthrough-sign.json', import.meta.url));
const THREAD_POOL = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
const IN_PROCESS_MODE = `C_SignInit + C_SignAsync (pkcs11js on libuv's thread pool of ${THREAD_POOL}), one loop and one session per connection`;

const message = Buffer.alloc(32, 0x61);
const digest = createHash('sha256').update(message).digest();

interface Case extends Signing {
  algorithm: string;
  mechanismName: string;
}

const CASES: Case[] = ([
  { algorithm: 'RSA-2048', mechanismName: 'CKM_SHA256_RSA_PKCS', key: 'rsa-2048', mechanism: CKM.SHA256_RSA_PKCS, data: message, signatureBytes: 256 },
  { algorithm: 'P-256', mechanismName: 'CKM_ECDSA (SHA-256 digest)', key: 'p-256', mechanism: CKM.ECDSA, data: digest, signatureBytes: 64 },
  { algorithm: 'Ed25519', mechanismName: 'CKM_EDDSA', key: 'ed25519', mechanism: CKM.EDDSA, data: message, signatureBytes: 64 },
] satisfies Array<Omit<Case, 'what'>>).map((c) => ({ ...c, what: `${c.algorithm} ${c.mechanismName}` }));

/** A template of the p11-kit codec as pkcs11js takes it. */
function moduleTemplate(template: readonly Attribute[]): pkcs11js.Template {
  return template.map(({ type, value }) => {
    switch (value?.kind) {
      case 'byte': return { type, value: value.value !== 0 };
      case 'ulong': return { type, value: value.value };
      case 'bytes': return { type, value: value.value };
      default: throw new Error(`attribute 0x${type.toString(16)}: no such value in the key recipes`);
    }
  });
}

/** SoftHSM2 loaded into this process through pkcs11js, on a token of its own, logged in. */
class InProcessSoftHsm {
  private constructor(
    private readonly module: pkcs11js.PKCS11,
    readonly mechanisms: ReadonlySet<number>,
    private readonly sessions: Buffer[],
    readonly keys: Partial<Record<KeyName, Buffer>>,
  ) {}

  /** SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: this process's is set to `softhsm`'s first. */
  static async open(softhsm: SoftHsm, token: SoftHsmToken, sessionCount: number): Promise<InProcessSoftHsm> {
    process.env.SOFTHSM2_CONF = softhsm.conf;
    const module = new pkcs11js.PKCS11();
    module.load(SOFTHSM_MODULE);
    module.C_Initialize({ flags: CKF.OS_LOCKING_OK });
    try {
      const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).serialNumber.trim() === token.serial);
      if (!slot) throw new Error(`SoftHSM2 in process: no token with serial ${token.serial}`);
      const mechanisms = new Set(module.C_GetMechanismList(slot));
      const sessions = Array.from({ length: sessionCount }, () => module.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION));
      // Logging in one session logs in the application: every session signs.
      module.C_Login(sessions[0]!, CKU.USER, token.userPin);
      const keys: Partial<Record<KeyName, Buffer>> = {};
      for (const recipe of KEY_RECIPES.filter((r) => mechanisms.has(r.mechanism))) {
        const generated = await generateByRecipe(recipe, (t) => module.C_GenerateKeyPair(sessions[0]!, { mechanism: recipe.mechanism }, moduleTemplate(t.publicKeyTemplate), moduleTemplate(t.privateKeyTemplate)),
          (error) => error instanceof pkcs11js.Pkcs11Error);
        keys[recipe.key] = generated.privateKey;
        // Found again by label, as the network clients find theirs.
        module.C_FindObjectsInit(sessions[0]!, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.LABEL, value: KEY_LABELS[recipe.key] }]);
        const found = module.C_FindObjects(sessions[0]!, 2);
        module.C_FindObjectsFinal(sessions[0]!);
        if (found.length !== 1) throw new Error(`SoftHSM2 in process: ${found.length} ${recipe.key} keys`);
      }
      return new InProcessSoftHsm(module, mechanisms, sessions, keys);
    } catch (error) {
      module.C_Finalize();
      throw error;
    }
  }

  /** One signature on the lane's own session: C_SignInit, then C_Sign on the thread pool. */
  lane(index: number, c: Case): Lane {
    const session = this.sessions[index]!;
    const key = this.keys[c.key];
    if (!key) throw new Error(`${c.what}: SoftHSM2 in process has no ${c.key} key`);
    const mechanism = { mechanism: c.mechanism };
    const out = Buffer.alloc(512);
    return async () => {
      this.module.C_SignInit(session, mechanism, key);
      const signature = await this.module.C_SignAsync(session, c.data, out);
      if (signature.length !== c.signatureBytes) throw new Error(`${c.what}: ${signature.length}-byte signature in process`);
    };
  }

  close(): void {
    this.module.C_Finalize();
  }
}

/** The daemon's module hosts (its child processes running module-host.js), for CPU accounting. */
function moduleHosts(daemonPid: number): number[] {
  return childProcesses(daemonPid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('module-host');
    } catch {
      return false;
    }
  });
}

interface Row {
  case: Case;
  connections: number;
  ntls: Window;
  inProcessSoftHsm: Window;
  p11kitSoftHsm: Window | null;
}

async function main(): Promise<void> {
  const started = Date.now();
  const { maxConnections } = settings;
  console.log(describeSettings(settings));
  console.log(`SoftHSM2 in process: ${IN_PROCESS_MODE}`);
  const notes: string[] = [];
  const note = (text: string) => { notes.push(text); console.log(`  note: ${text}`); };

  // Two SoftHSM2 token folders: one behind ntls, one for this process (p11-kit's makes its own).
  const ntlsTokens = new SoftHsm();
  const localTokens = new SoftHsm();
  let ntls: NtlsDaemon | null = null;
  let softhsm: SoftHsmServer | null = null;
  let local: InProcessSoftHsm | null = null;
  const open: TokenConnection[] = [];
  try {
    const ntlsToken = ntlsTokens.initToken('ntls-bench', NTLS_SO_PIN, NTLS_USER_PIN);
    const localToken = localTokens.initToken('local-bench', '1234', SOFTHSM_USER_PIN);
    console.log('starting ntls (pkcs11 backend on SoftHSM2) and p11-kit server + SoftHSM2; SoftHSM2 in process ...');
    ntls = await NtlsDaemon.start({
      hsm: { backend: 'pkcs11', pkcs11: { module: SOFTHSM_MODULE, tokens: [{ partition: NTLS_PARTITION, serial: ntlsToken.serial }] } },
      env: ntlsTokens.env,
    });
    softhsm = await SoftHsmServer.start();
    local = await InProcessSoftHsm.open(localTokens, localToken, maxConnections);

    const daemon = ntls;
    const server = softhsm;
    const { mechanisms: ntlsMechanisms, connections: ntlsConnections } = await readyServer(() => daemon.connect(), NTLS_USER_PIN, maxConnections, 8);
    open.push(...ntlsConnections);
    const { mechanisms: softMechanisms, connections: softConnections } = await readyServer(() => server.connect(), SOFTHSM_USER_PIN, maxConnections, 1);
    open.push(...softConnections);
    const hosts = moduleHosts(daemon.pid);
    console.log(`${maxConnections} connections to ntls and to p11-kit server, ${maxConnections} sessions in process, logged in; `
      + `ntls module hosts: ${hosts.length} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    if (hosts.length === 0) note('no module-host process found under the daemon: host cores not counted');

    const rows: Row[] = [];
    for (const c of CASES) {
      if (!local.mechanisms.has(c.mechanism)) {
        note(`${c.what}: SoftHSM2 does not list it (C_GetMechanismList); row skipped`);
        continue;
      }
      if (!ntlsMechanisms.has(c.mechanism)) {
        note(`${c.what}: SoftHSM2 lists it but ntls's passthrough partition does not; row skipped`);
        continue;
      }
      if (ntlsConnections[0]!.keys[c.key] === undefined || !local.keys[c.key]) {
        note(`${c.what}: no ${c.key} key on ntls's token or the in-process one; row skipped`);
        continue;
      }
      const softRuns = softMechanisms.has(c.mechanism) && softConnections[0]!.keys[c.key] !== undefined;
      if (!softRuns) note(`${c.what}: p11-kit server + SoftHSM2 cannot sign it; its column is empty`);
      const inProcess = local;
      for (const n of settings.connections) {
        process.stdout.write(`  ${c.what}, ${n} connection(s) ...`);
        const [inProcessWindow, ntlsWindow, soft] = await interleaved(settings, [
          { lanes: Array.from({ length: n }, (_, i) => inProcess.lane(i, c)), pids: [] },
          { lanes: ntlsConnections.slice(0, n).map((conn) => signLane(conn, c)), pids: [daemon.pid, ...hosts] },
          softRuns ? { lanes: softConnections.slice(0, n).map((conn) => signLane(conn, c)), pids: [] } : null,
        ]) as [Window, Window, Window | null];
        rows.push({ case: c, connections: n, ntls: ntlsWindow, inProcessSoftHsm: inProcessWindow, p11kitSoftHsm: soft });
        console.log(` ntls ${num(ntlsWindow.opsPerSecond, 0)}/s, in process ${num(inProcessWindow.opsPerSecond, 0)}/s, p11-kit ${num(soft?.opsPerSecond, 0)}/s`);
      }
    }

    const hostCores = (w: Window) => (w.processCores.length > 1 ? w.processCores.slice(1).reduce((a, b) => a + b, 0) : null);
    console.log('');
    console.log(`${pad('sign/s', 38)}${'conns'.padStart(6)}${'ntls'.padStart(9)}${'SoftHSM2'.padStart(10)}${'p11-kit'.padStart(9)}${'÷SoftHSM2'.padStart(11)}${'÷p11-kit'.padStart(10)}`
      + `${'ntlsd'.padStart(8)}${'host'.padStart(7)}${'client'.padStart(8)}${'busy'.padStart(7)}`);
    for (const r of rows) {
      console.log(`${pad(r.case.what, 38)}${String(r.connections).padStart(6)}${num(r.ntls.opsPerSecond)}${num(r.inProcessSoftHsm.opsPerSecond, 10)}${num(r.p11kitSoftHsm?.opsPerSecond)}`
        + `${ratio(r.ntls.opsPerSecond, r.inProcessSoftHsm.opsPerSecond, 11)}${ratio(r.ntls.opsPerSecond, r.p11kitSoftHsm?.opsPerSecond, 10)}`
        + `${cores(r.ntls.processCores[0], 8)}${cores(hostCores(r.ntls), 7)}${cores(r.ntls.clientCores, 8)}${cores(r.ntls.machineCores, 7)}`);
    }
    console.log('\nSoftHSM2  = SoftHSM2 in this process through pkcs11js (C_SignAsync), same number of lanes; p11-kit = p11-kit server + SoftHSM2, same client path');
    console.log('÷SoftHSM2 = ntls ÷ SoftHSM2 in process: what is left of the module\'s own speed once it is behind ntls (mutual TLS, codec, isolation, module-host IPC)');
    console.log('÷p11-kit  = ntls ÷ p11-kit server + SoftHSM2: ntls against the stock way of putting the same module on a socket (no TLS, no isolation)');
    console.log(`cores during the ntls windows: ntlsd = the daemon, host = its module host(s), client = this process, busy = the whole machine (of ${availableParallelism()}, shared)`);
    for (const text of notes) console.log(`note: ${text}`);

    writeRecord(resultsFile, {
      ...recordHeader('passthrough-sign', 'npm run bench:passthrough', settings),
      inFlightPerConnection: 1,
      systems: {
        ntls: 'ntls daemon, hsm.backend pkcs11 on a SoftHSM2 token (one module-host process), mutual TLS on loopback, our p11-kit codec as client',
        inProcessSoftHsm: `SoftHSM2 loaded in the client process through pkcs11js: ${IN_PROCESS_MODE}`,
        p11kitSoftHsm: 'p11-kit server (a p11-kit-remote process per connection) + SoftHSM2, unix socket, same codec and client path',
        packages: packageVersions(),
      },
      notes,
      rows: rows.map((r) => ({
        algorithm: r.case.algorithm,
        mechanism: r.case.mechanismName,
        connections: r.connections,
        ntls: {
          ...recorded(r.ntls),
          daemonCores: Number((r.ntls.processCores[0] ?? NaN).toFixed(2)),
          ...(hostCores(r.ntls) === null ? {} : { moduleHostCores: Number(hostCores(r.ntls)!.toFixed(2)) }),
        },
        inProcessSoftHsm: recorded(r.inProcessSoftHsm),
        p11kitSoftHsm: recorded(r.p11kitSoftHsm),
        ntlsOverInProcessSoftHsm: recordedRatio(r.ntls, r.inProcessSoftHsm),
        ntlsOverP11kitSoftHsm: recordedRatio(r.ntls, r.p11kitSoftHsm),
      })),
    });
    console.log(`\nwritten ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await Promise.all(open.map((c) => c.channel.close().catch(() => undefined)));
    local?.close();
    await softhsm?.stop();
    await ntls?.stop();
    ntlsTokens.remove();
    localTokens.remove();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

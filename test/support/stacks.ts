// Three PKCS#11 stacks, for tests that run an application the same way on each and compare:
// p11-kit server + SoftHSM2 (the reference), ntls through p11-kit-client.so and the TLS relay, and
// ntls through libntls-pkcs11.so (which starts its relay from the client's configuration). Each
// holds one token initialised with the same SO PIN and user PIN; the keys are the test's to make.
import { join } from 'node:path';
import { Daemon, removeHome } from './daemon.js';
import {
  P11KIT_CLIENT, createClientCert, createPartition, explain, p11kitEnv, registerClient, removeDir, run, startE2eDaemon, startRelay,
  tempDir, type Relay, type ToolResult,
} from './e2e.js';
import { ReferenceServer } from './reference.js';
import { moduleWorld, type ModuleWorld } from '../module/support.js';

function mustSucceed(r: ToolResult): void {
  if (r.status !== 0) throw new Error(explain(r));
}

export interface Stack {
  name: string;
  /** The PKCS#11 module the applications load, and the environment it needs. */
  module: string;
  env: NodeJS.ProcessEnv;
  token: string;
  /** The stack's own folder, for the test's files. */
  dir: string;
  /** The ntls daemon behind the stack (none for the reference). */
  daemon?: Daemon;
}

export class ThreeStacks {
  private constructor(
    readonly all: readonly Stack[],
    /** A folder for files shared by the stacks. */
    readonly work: string,
    private readonly reference: ReferenceServer,
    private readonly daemon: Daemon,
    private readonly relay: Relay,
    private readonly world: ModuleWorld,
  ) {}

  /**
   * `name` (letters) names the partition, the client and the folders; `token` is the label of the
   * reference's token and of the relay's (the module's is `<name>mod-token`).
   */
  static async start(name: string, token: string, soPin: string, pin: string): Promise<ThreeStacks> {
    const work = tempDir(`ntls-e2e-${name}-`);
    const started: Array<() => Promise<void> | void> = [() => removeDir(work)];
    try {
      const reference = await ReferenceServer.start(token, soPin, pin);
      started.push(() => reference.stop());
      const daemon = await startE2eDaemon();
      started.push(async () => { await daemon.stop(); removeHome(daemon.home); });
      await createPartition(daemon, `${name}-part`);
      const client = await createClientCert(`${name}client`, work);
      await registerClient(daemon, client, `${name}-part`);
      const relay = await startRelay(daemon, client, join(work, 'relay.sock'));
      started.push(() => relay.stop());
      const world = await moduleWorld(`${name}mod`, { initialize: true });
      started.push(() => world.close());
      const stacks = new ThreeStacks([
        { name: 'reference (p11-kit server + SoftHSM2)', module: P11KIT_CLIENT, env: p11kitEnv(reference.socketPath), token, dir: tempDir(`ntls-e2e-${name}-ref-`) },
        { name: 'ntls through p11-kit-client.so and the TLS relay', module: P11KIT_CLIENT, env: p11kitEnv(relay.socketPath), token, dir: tempDir(`ntls-e2e-${name}-ntls-`), daemon },
        { name: 'ntls through libntls-pkcs11.so', module: world.module, env: world.env, token: `${name}mod-token`, dir: tempDir(`ntls-e2e-${name}-mod-`), daemon: world.daemon },
      ], work, reference, daemon, relay, world);
      for (const stack of stacks.all) started.push(() => removeDir(stack.dir));
      const relayed = stacks.all[1]!;
      mustSucceed(await stacks.tool(relayed, ['--slot-index', '0', '--init-token', '--label', token, '--so-pin', soPin]));
      mustSucceed(await stacks.tool(relayed, ['--slot-index', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', soPin, '--pin', pin]));
      return stacks;
    } catch (error) {
      for (const stop of started.reverse()) await stop();
      throw error;
    }
  }

  /** pkcs11-tool on the stack's module, in the shared folder. */
  tool(stack: Stack, args: string[]): Promise<ToolResult> {
    return run('pkcs11-tool', ['--module', stack.module, ...args], { env: stack.env, cwd: this.work, timeoutMs: 60_000 });
  }

  async stop(): Promise<void> {
    await this.relay.stop();
    await this.daemon.stop();
    removeHome(this.daemon.home);
    await this.reference.stop();
    await this.world.close();
    for (const stack of this.all) removeDir(stack.dir);
    removeDir(this.work);
  }
}

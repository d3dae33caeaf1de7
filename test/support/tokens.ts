// A device under the token model, as the processor runs one: every token of the device mounted
// at its own slot, partitions mounted as they are made and unmounted before they go. Tests of
// the software HSM, the passthrough and token images drive PKCS#11 calls through it.
import type { PassthroughDevice, SoftwareHsm } from '../../src/hsm/index.js';
import { TokenModel, type Application, type TokenSummary } from '../../src/token/index.js';

export class TokensUnderTest<D extends SoftwareHsm | PassthroughDevice = SoftwareHsm> {
  readonly model: TokenModel;

  constructor(readonly device: D) {
    this.model = new TokenModel(device.libraryInfo);
    this.model.mountAll(device);
  }

  /** `owner`: the client the application belongs to (its share of the device's operation memory). */
  application(id: string, owner?: string): Application {
    return this.model.application(id, owner);
  }

  listPartitions(): TokenSummary[] {
    return this.model.tokens(this.device);
  }

  getSlotList(): number[] {
    return this.model.slots.list().map((m) => m.slot);
  }

  close(): void | Promise<void> {
    this.model.close();
    return this.device.close();
  }
}

/** The software HSM under the model, with its administration as the processor does it. */
export class SoftwareUnderTest extends TokensUnderTest<SoftwareHsm> {
  async createPartition(options: Parameters<SoftwareHsm['createPartition']>[0] = {}): Promise<TokenSummary> {
    const made = await this.device.createPartition(options);
    this.model.mount(made.slot, this.device, made.slot);
    return this.listPartitions().find((p) => p.slotId === made.slot)!;
  }

  async deletePartition(slot: number): Promise<void> {
    this.model.unmount(slot);
    await this.device.deletePartition(slot);
  }

  getTokenInfo(slot: number) {
    return this.device.tokenInfo(slot);
  }

  partition(slot: number) {
    return this.device.partition(slot);
  }

  override close(): void {
    this.model.close();
    this.device.close();
  }

  /** close(), and the store's connections ended (a PostgreSQL store). */
  async shutdown(): Promise<void> {
    this.model.close();
    await this.device.shutdown();
  }
}

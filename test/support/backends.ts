// The processor's tests run once per HSM backend: the built-in software HSM, and SoftHSM2 behind
// ntls through the PKCS#11 passthrough. A suite says which partitions it needs (label, SO PIN);
// on the software HSM they are created with `ntls partition create` when the suite asks, on
// SoftHSM2 they are tokens made before the daemon starts and mapped in its configuration.
import { runNtls } from './daemon.js';
import { SOFTHSM_MODULE, SoftHsm } from './softhsm.js';

export type BackendKind = 'software' | 'pkcs11';
export const BACKENDS: readonly BackendKind[] = ['software', 'pkcs11'];

/** What makes a partition on the software HSM: a processor target (test/support/processor-target.ts). */
export interface PartitionCreator {
  createPartition(label: string, soPin: string): Promise<void>;
}

export interface PartitionSpec {
  label: string;
  soPin: string;
  /** The token's first user PIN on SoftHSM2 (softhsm2-util wants one); suites set theirs with C_InitPIN. */
  userPin?: string;
}

export class TestBackend {
  private readonly softhsm: SoftHsm | null;
  private readonly serials = new Map<string, string>();

  constructor(readonly kind: BackendKind, private readonly partitions: readonly PartitionSpec[]) {
    this.softhsm = kind === 'pkcs11' ? new SoftHsm() : null;
    if (this.softhsm) {
      for (const p of partitions) this.serials.set(p.label, this.softhsm.initToken(p.label, p.soPin, p.userPin ?? 'initial-user-pin').serial);
    }
  }

  /** The hsm section of the daemon's configuration (merged over `base`). */
  hsmConfig(base: Record<string, unknown> = {}): Record<string, unknown> {
    if (!this.softhsm) return base;
    return {
      ...base,
      backend: 'pkcs11',
      pkcs11: { module: SOFTHSM_MODULE, tokens: this.partitions.map((p) => ({ partition: p.label, serial: this.serials.get(p.label) })) },
    };
  }

  /** The manufacturerID of the partitions' tokens (C_GetTokenInfo): ntls's own, or SoftHSM2's. */
  get tokenManufacturer(): string {
    return this.softhsm ? 'SoftHSM project' : 'NTLS';
  }

  /** What the daemon (and any tool loading the module itself) needs in its environment. */
  get env(): NodeJS.ProcessEnv {
    return this.softhsm?.env ?? {};
  }

  /**
   * Makes the partition exist: created on the software HSM (with `ntls partition create` in the
   * daemon's home, or by a processor target), already there on SoftHSM2.
   */
  async createPartition(where: string | PartitionCreator, label: string): Promise<void> {
    const spec = this.partitions.find((p) => p.label === label);
    if (!spec) throw new Error(`partition ${label} was not declared to the test backend`);
    if (this.softhsm) return;
    if (typeof where !== 'string') return where.createPartition(label, spec.soPin);
    const created = await runNtls(['partition', 'create', '--label', label, '--so-pin', spec.soPin, '--home', where]);
    if (created.status !== 0) throw new Error(`ntls partition create ${label}: ${created.stderr}`);
  }

  remove(): void {
    this.softhsm?.remove();
  }
}

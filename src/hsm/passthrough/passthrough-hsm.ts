// The PKCS#11 passthrough backend: each ntls partition is a token of a PKCS#11 module the
// configuration names (found by label or serial, never by slot number), served through a module
// host process of its own. Slots are the partitions in configuration order.
import { Catalogue } from '../../log/catalogue.js';
import type { Logger } from '../../log/logger.js';
import { CKF } from '../../pkcs11/constants.js';
import type { HsmBackend } from '../backend.js';
import type { LibraryInfo, PartitionSummary } from '../hsm.js';
import { PassthroughApplication } from './application.js';
import { TokenLink, type TokenMapping } from './token-link.js';

export interface PassthroughOptions {
  module: string;
  tokens: readonly TokenMapping[];
  callTimeoutMs: number;
  /** Wrong PINs ntls checks itself (see TokenLink) before it answers CKR_PIN_LOCKED. */
  maxFailedLogins?: number;
  logger?: Logger;
}

/** The module or a token could not be used at start: the service does not start. */
export class PassthroughStartError extends Error {
  constructor(readonly partition: string, readonly rv: number | null, message: string) {
    super(message);
    this.name = 'PassthroughStartError';
  }
}

const LIBRARY_INFO: LibraryInfo = {
  cryptokiVersion: { major: 2, minor: 40 }, manufacturerID: 'NTLS', flags: 0,
  libraryDescription: 'NTLS network HSM (PKCS#11 module)', libraryVersion: { major: 0, minor: 1 },
};

export class PassthroughHsm implements HsmBackend {
  readonly kind = 'pkcs11' as const;
  private readonly applications = new Map<string, PassthroughApplication>();
  private nextSession = 1;

  private constructor(readonly tokens: readonly TokenLink[], readonly module: string) {}

  /** Starts one module host per partition; logs "Fail to initialize token interface" and throws when one cannot start. */
  static async open(options: PassthroughOptions): Promise<PassthroughHsm> {
    const tokens = options.tokens.map((mapping) => new TokenLink(mapping, options.module, options.callTimeoutMs, options.maxFailedLogins ?? 10, options.logger));
    const started = await Promise.allSettled(tokens.map((t) => t.start()));
    const failed = started.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      await Promise.all(tokens.map((t) => t.close()));
      options.logger?.log(Catalogue.tokenInterfaceInitFailed);
      const reason = (started[failed] as PromiseRejectedResult).reason as Error & { rv?: number };
      throw new PassthroughStartError(tokens[failed]!.mapping.partition, reason.rv ?? null,
        `partition ${tokens[failed]!.mapping.partition}: ${options.module}: ${reason.message}`);
    }
    return new PassthroughHsm(tokens, options.module);
  }

  application(id: string): PassthroughApplication {
    let app = this.applications.get(id);
    if (!app) {
      app = new PassthroughApplication({
        tokens: this.tokens,
        libraryInfo: LIBRARY_INFO,
        newSessionHandle: () => this.nextSession++,
        dropApplication: (gone) => this.applications.delete(gone),
      }, id);
      this.applications.set(id, app);
    }
    return app;
  }

  listPartitions(): PartitionSummary[] {
    return this.tokens.map((token, slotId) => ({
      slotId,
      serial: token.info?.serialNumber ?? token.mapping.serial ?? '',
      label: token.mapping.partition,
      initialized: token.info ? (token.info.flags & CKF.TOKEN_INITIALIZED) !== 0 : false,
      tokenObjects: null,
    }));
  }

  sessionCount(slotId: number): number {
    return this.tokens[slotId]?.sessionOwners.size ?? 0;
  }

  async close(): Promise<void> {
    for (const app of [...this.applications.values()]) app.finalize();
    await Promise.all(this.tokens.map((t) => t.close()));
  }
}

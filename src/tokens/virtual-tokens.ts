// The virtual token list: USB-attached tokens (token images in `<home>/devices`) get a slot
// while inserted, and the deployed ones are opened as HSMs for clients to use. This module
// decides and logs; the watcher says what changed in the folder, the processor serves the
// deployed tokens it is given by deployed().
//
// Slots: each inserted image gets the first free number from VIRTUAL_SLOT_BASE up (skipping
// the HSM's partition slots and the slots kept for deployed tokens that are ejected), stable
// while it stays inserted. Container ids: from VIRTUAL_CONTAINER_BASE up, likewise. A deployed
// token keeps both in deployed.json and gets them back when inserted again.
//
// Failure lines (docs/token-image.md):
//   "Unable to initialize VToken S/C"  the image in the slot is damaged, foreign or of a newer format
//   "Unable to start VToken S/C"       the image checks out but its HSM does not open
//   "Unable to add VToken S/C to table" the token's serial is already in the table, or the list cannot be saved

import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SoftwareHsm } from '../hsm/index.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import { DeployedList, type DeployedEntry } from './deployed-list.js';
import { TokenError } from './errors.js';
import { devicesFolder, openImageHsm, readImage, type ImageHsmOptions, type ImageInfo } from './image.js';
import { DeviceWatcher, type FolderChanges } from './watcher.js';

export const VIRTUAL_SLOT_BASE = 100;
export const VIRTUAL_CONTAINER_BASE = 1000;

/** What the processor serves: a deployed token, open. */
export interface DeployedToken {
  slot: number;
  container: number;
  label: string;
  serial: string;
  hsm: SoftwareHsm;
}

export type TokenChangeKind = 'deployed' | 'redeployed' | 'undeployed' | 'ejected';

/**
 * A change of the deployed set. For 'undeployed' and 'ejected' the listeners run before the
 * token's HSM is closed, so they can end its sessions first.
 */
export interface TokenChange {
  kind: TokenChangeKind;
  slot: number;
  container: number;
  label: string;
  serial: string;
}

export type TokenState = 'deployed' | 'inserted' | 'refused' | 'deployed-not-started' | 'deployed-ejected';

export interface TokenListing {
  file: string;
  slot: number | null;
  container: number | null;
  label: string | null;
  serial: string | null;
  state: TokenState;
  objects: number | null;
  lastBackup: string | null;
  problem: { code: string; message: string } | null;
}

export interface VirtualTokensOptions {
  home: string;
  logger: Logger;
  /** How deployed tokens' HSMs are opened (mechanisms, PIN policy, KDF): those of the home's HSM. */
  hsmOptions: ImageHsmOptions;
  /** Slots the HSM's partitions use. */
  reservedSlots(): Iterable<number>;
  /** Serial numbers of the HSM's partitions: a token carrying one is not added to the table. */
  reservedSerials(): Iterable<string>;
  settleMs?: number;
  intervalMs?: number;
}

interface Device {
  file: string;
  slot: number;
  container: number;
  info: ImageInfo | null;
  problem: TokenError | null;
  hsm: SoftwareHsm | null;
  /** A backup or restore is using the image. */
  busy: boolean;
}

function asTokenError(error: unknown, fallback: TokenError['code']): TokenError {
  return error instanceof TokenError ? error : new TokenError(fallback, (error as Error).message, undefined, { cause: error });
}

export class VirtualTokens {
  readonly folder: string;
  private readonly devices = new Map<string, Device>();
  private readonly listeners = new Set<(change: TokenChange) => void>();
  private readonly watcher: DeviceWatcher;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly options: VirtualTokensOptions, private readonly deployedList: DeployedList) {
    this.folder = devicesFolder(options.home);
    this.watcher = new DeviceWatcher(this.folder, { settleMs: options.settleMs ?? 300, intervalMs: options.intervalMs ?? 2000 },
      (changes) => this.serial(() => this.apply(changes)));
  }

  /**
   * Creates the devices folder, reads the deployed list, takes the images already inserted
   * (re-deploying the deployed ones) and starts watching. Throws TokenError when the folder or
   * the list cannot be used; the caller logs "Fail to Initialize VToken Manager".
   */
  static async start(options: VirtualTokensOptions): Promise<VirtualTokens> {
    const folder = devicesFolder(options.home);
    try {
      mkdirSync(folder, { recursive: true, mode: 0o700 });
      // Working copies of backups a stopped daemon did not finish: the images kept their content.
      for (const name of readdirSync(folder)) if (/^\..+\.backup-\d+(-journal)?$/.test(name)) rmSync(join(folder, name), { force: true });
    } catch (error) {
      throw new TokenError('NTLS_ERR_DEPLOYED_LIST', `${folder} cannot be used: ${(error as Error).message}`, 'check the home folder\'s permissions');
    }
    const tokens = new VirtualTokens(options, DeployedList.load(folder));
    await tokens.watcher.start();
    return tokens;
  }

  /** The deployed tokens that are open, by slot. */
  deployed(): DeployedToken[] {
    const out: DeployedToken[] = [];
    for (const d of this.devices.values()) {
      if (d.hsm !== null && d.info !== null) out.push({ slot: d.slot, container: d.container, label: d.info.label, serial: d.info.serial, hsm: d.hsm });
    }
    return out.sort((a, b) => a.slot - b.slot);
  }

  /** Listens to deploy, re-deploy, undeploy and eject; returns the function that stops listening. */
  onChange(listener: (change: TokenChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): TokenListing[] {
    const rows: TokenListing[] = [...this.devices.values()].sort((a, b) => a.slot - b.slot).map((d) => ({
      file: d.file, slot: d.slot, container: d.container, label: d.info?.label ?? null, serial: d.info?.serial ?? null,
      state: d.info === null ? 'refused' : d.hsm !== null ? 'deployed' : this.deployedList.get(d.info.serial) ? 'deployed-not-started' : 'inserted',
      objects: d.info?.objects ?? null, lastBackup: d.info?.backup?.at ?? null,
      problem: d.problem === null ? null : { code: d.problem.code, message: d.problem.message },
    }));
    const present = new Set([...this.devices.values()].map((d) => d.info?.serial));
    for (const e of this.deployedList.all()) {
      if (present.has(e.serial)) continue;
      rows.push({
        file: e.file, slot: e.slot, container: e.container, label: e.label, serial: e.serial, state: 'deployed-ejected',
        objects: null, lastBackup: null, problem: null,
      });
    }
    return rows;
  }

  /** Looks at the folder now instead of waiting for the watcher (the admin commands do, to act on the latest state). */
  refresh(): Promise<void> {
    return this.watcher.look();
  }

  deploy(name: string): Promise<TokenListing> {
    return this.serial(async () => {
      const device = this.find(name);
      if (device.hsm !== null) throw new TokenError('NTLS_ERR_TOKEN_DEPLOYED', `token ${name} is already deployed at slot ${device.slot}`, 'see `ntls token list`');
      if (device.busy) throw this.busyError(name);
      const { logger } = this.options;
      const at = { slot: device.slot, container: device.container };
      logger.log(Catalogue.monitorConfigEntered, { slot: device.slot });
      try {
        let info: ImageInfo;
        try {
          info = readImage(this.path(device));
        } catch (error) {
          device.info = null;
          device.problem = asTokenError(error, 'NTLS_ERR_IMAGE_DAMAGED');
          logger.log(Catalogue.vtokenInitFailed, at);
          throw device.problem;
        }
        device.info = info;
        device.problem = null;
        this.checkTableFree(info, device);
        const hsm = await this.openHsm(device);
        try {
          this.deployedList.put({
            serial: info.serial, label: info.label, file: device.file, slot: device.slot, container: device.container,
            deployedAt: new Date().toISOString(),
          });
        } catch (error) {
          hsm.close();
          logger.log(Catalogue.vtokenAddFailed, at);
          throw new TokenError('NTLS_ERR_DEPLOYED_LIST', `the deployed list cannot be saved: ${(error as Error).message}`, 'check the devices folder');
        }
        device.hsm = hsm;
        logger.log(Catalogue.usbTokenAdded, { label: info.label, serial: info.serial, slot: device.slot, container: device.container });
        logger.log(Catalogue.vtokenCreated, at);
        this.emit({ kind: 'deployed', ...at, label: info.label, serial: info.serial });
        return this.listing(device);
      } finally {
        logger.log(Catalogue.monitorConfigLeft, { slot: device.slot });
      }
    });
  }

  undeploy(name: string): Promise<{ label: string; serial: string }> {
    return this.serial(async () => {
      const entry = this.deployedList.all().find((e) => e.serial === name || e.file === name || e.file === `${name}.ntlstoken`)
        ?? this.uniqueByLabel(name);
      const device = [...this.devices.values()].find((d) => d.info?.serial === entry.serial);
      if (device) this.options.logger.log(Catalogue.monitorConfigEntered, { slot: device.slot });
      this.deployedList.remove(entry.serial);
      if (device?.hsm) {
        const hsm = device.hsm;
        device.hsm = null;
        this.emit({ kind: 'undeployed', slot: device.slot, container: device.container, label: entry.label, serial: entry.serial });
        hsm.close();
      }
      this.options.logger.log(Catalogue.usbTokenUndeployed, { label: entry.label, serial: entry.serial });
      if (device) this.options.logger.log(Catalogue.monitorConfigLeft, { slot: device.slot });
      return { label: entry.label, serial: entry.serial };
    });
  }

  /**
   * Runs `work` on an inserted, undeployed image that nothing else uses (backup, restore). `adopt`
   * tells the watcher that the daemon itself replaced the file.
   */
  async withImage<T>(name: string, work: (image: { path: string; info: ImageInfo; adopt(): void }) => Promise<T>): Promise<T> {
    const device = await this.serial(async () => {
      const found = this.find(name);
      if (found.hsm !== null) throw new TokenError('NTLS_ERR_TOKEN_DEPLOYED', `token ${name} is deployed; its HSM is in use`, 'undeploy it first (`ntls token undeploy`)');
      if (found.busy) throw this.busyError(name);
      if (found.info === null) throw found.problem ?? new TokenError('NTLS_ERR_IMAGE_DAMAGED', `${found.file} is refused`);
      found.busy = true;
      return found;
    });
    try {
      return await work({
        path: this.path(device),
        info: device.info!,
        adopt: () => this.watcher.adopt(device.file),
      });
    } finally {
      device.busy = false;
      try {
        if (this.devices.get(device.file) === device) device.info = readImage(this.path(device));
      } catch {
        // Ejected meanwhile: the watcher says so.
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher.close();
    await this.queue.catch(() => undefined);
    for (const d of this.devices.values()) {
      d.hsm?.close();
      d.hsm = null;
    }
  }

  // --- Folder changes ------------------------------------------------------------------------

  private async apply(changes: FolderChanges): Promise<void> {
    if (this.closed) return;
    const { logger } = this.options;
    for (const file of changes.ejected) this.eject(file);
    for (const file of changes.unchanged) {
      const device = this.devices.get(file);
      if (!device) continue;
      logger.log(Catalogue.monitorSlotEntered, { slot: device.slot });
      logger.log(Catalogue.monitorSlotLeft, { slot: device.slot });
    }
    for (const file of changes.changed) {
      // A refused file that changed is looked at again (a slow copy that had paused); a good one
      // changes because its own HSM writes to it.
      const device = this.devices.get(file);
      if (device && device.info === null && !device.busy) {
        this.devices.delete(file);
        await this.insert(file, device.slot, device.container);
      }
    }
    for (const file of changes.inserted) await this.insert(file);
  }

  private async insert(file: string, slot?: number, container?: number): Promise<void> {
    const { logger } = this.options;
    let info: ImageInfo | null = null;
    let problem: TokenError | null = null;
    try {
      info = readImage(join(this.folder, file));
    } catch (error) {
      problem = asTokenError(error, 'NTLS_ERR_IMAGE_DAMAGED');
    }
    const entry = info ? this.deployedList.get(info.serial) : undefined;
    const device: Device = {
      file, info, problem, hsm: null, busy: false,
      slot: slot ?? this.freeSlot(entry?.slot),
      container: container ?? this.freeContainer(entry?.container),
    };
    this.devices.set(file, device);
    logger.log(Catalogue.monitorSlotEntered, { slot: device.slot });
    try {
      if (info === null) {
        logger.log(Catalogue.vtokenInitFailed, { slot: device.slot, container: device.container });
        return;
      }
      const alreadyOpen = this.deployed().some((d) => d.serial === info.serial);
      if (entry === undefined || alreadyOpen) {
        if (info.label === '') logger.log(Catalogue.nonDeployedUnlabelledTokenInserted, { serial: info.serial, slot: device.slot });
        else logger.log(Catalogue.nonDeployedTokenInserted, { label: info.label, serial: info.serial, slot: device.slot });
        return;
      }
      logger.log(Catalogue.deployedTokenInserted, { label: info.label, serial: info.serial, slot: device.slot });
      logger.log(Catalogue.monitorConfigEntered, { slot: device.slot });
      try {
        this.checkTableFree(info, device);
        device.hsm = await this.openHsm(device);
        if (entry.slot !== device.slot || entry.container !== device.container || entry.file !== file || entry.label !== info.label) {
          try {
            this.deployedList.put({ ...entry, slot: device.slot, container: device.container, file, label: info.label });
          } catch {
            // The token serves at its new slot all the same; the list is rewritten at the next change.
          }
        }
        logger.log(Catalogue.usbTokenRedeployed, { label: info.label, serial: info.serial });
        logger.log(Catalogue.vtokenCreated, { slot: device.slot, container: device.container });
        this.emit({ kind: 'redeployed', slot: device.slot, container: device.container, label: info.label, serial: info.serial });
      } catch (error) {
        device.problem = asTokenError(error, 'NTLS_ERR_TOKEN_START');
      } finally {
        logger.log(Catalogue.monitorConfigLeft, { slot: device.slot });
      }
    } finally {
      logger.log(Catalogue.monitorSlotLeft, { slot: device.slot });
    }
  }

  private eject(file: string): void {
    const device = this.devices.get(file);
    if (!device) return;
    this.devices.delete(file);
    const { logger } = this.options;
    logger.log(Catalogue.monitorSlotEntered, { slot: device.slot });
    const info = device.info;
    if (info !== null) {
      if (device.hsm !== null || this.deployedList.get(info.serial)) {
        logger.log(Catalogue.deployedTokenEjected, { label: info.label, serial: info.serial, slot: device.slot });
      } else if (info.label === '') {
        logger.log(Catalogue.nonDeployedUnlabelledTokenEjected, { serial: info.serial, slot: device.slot });
      } else {
        logger.log(Catalogue.nonDeployedTokenEjected, { label: info.label, serial: info.serial, slot: device.slot });
      }
      if (device.hsm !== null) {
        const hsm = device.hsm;
        device.hsm = null;
        this.emit({ kind: 'ejected', slot: device.slot, container: device.container, label: info.label, serial: info.serial });
        hsm.close();
      }
    }
    logger.log(Catalogue.monitorSlotLeft, { slot: device.slot });
  }

  // --- Helpers -------------------------------------------------------------------------------

  /** Opens a token's HSM; a failure logs "Unable to start VToken". */
  private async openHsm(device: Device): Promise<SoftwareHsm> {
    try {
      return (await openImageHsm(this.path(device), this.options.hsmOptions)).hsm;
    } catch (error) {
      this.options.logger.log(Catalogue.vtokenStartFailed, { slot: device.slot, container: device.container });
      if (error instanceof TokenError) {
        device.info = null;
        device.problem = error;
        throw error;
      }
      throw new TokenError('NTLS_ERR_TOKEN_START', `the token in slot ${device.slot} does not open: ${(error as Error).message}`,
        'see `ntls token list`; the image was left as it is', { cause: error });
    }
  }

  /** A serial already served (a partition of the HSM, or another deployed token) is not added twice. */
  private checkTableFree(info: ImageInfo, device: Device): void {
    const taken = [...this.options.reservedSerials()].includes(info.serial)
      || this.deployed().some((d) => d.serial === info.serial);
    if (!taken) return;
    this.options.logger.log(Catalogue.vtokenAddFailed, { slot: device.slot, container: device.container });
    throw new TokenError('NTLS_ERR_TOKEN_IN_TABLE', `serial number ${info.serial} is already in the token table`,
      'a copy of this token, or a partition with its serial, is in use; eject the copy');
  }

  private freeSlot(preferred?: number): number {
    const taken = new Set<number>([...this.options.reservedSlots(), ...[...this.devices.values()].map((d) => d.slot)]);
    const present = new Set([...this.devices.values()].map((d) => d.info?.serial));
    const kept = this.deployedList.all().filter((e) => !present.has(e.serial)).map((e) => e.slot);
    if (preferred !== undefined && !taken.has(preferred)) return preferred;
    for (const s of kept) taken.add(s);
    let slot = VIRTUAL_SLOT_BASE;
    while (taken.has(slot)) slot++;
    return slot;
  }

  private freeContainer(preferred?: number): number {
    const taken = new Set<number>([...this.devices.values()].map((d) => d.container));
    if (preferred !== undefined && !taken.has(preferred)) return preferred;
    const present = new Set([...this.devices.values()].map((d) => d.info?.serial));
    for (const e of this.deployedList.all()) if (!present.has(e.serial)) taken.add(e.container);
    let container = VIRTUAL_CONTAINER_BASE;
    while (taken.has(container)) container++;
    return container;
  }

  /** An inserted image by file name (with or without .ntlstoken), serial number or label. */
  private find(name: string): Device {
    const all = [...this.devices.values()];
    const byFile = all.find((d) => d.file === name || d.file === `${name}.ntlstoken`);
    if (byFile) return byFile;
    const matches = all.filter((d) => d.info?.serial === name);
    const byLabel = matches.length ? matches : all.filter((d) => d.info?.label === name);
    if (byLabel.length === 1) return byLabel[0]!;
    if (byLabel.length > 1) throw new TokenError('NTLS_ERR_TOKEN_AMBIGUOUS', `${byLabel.length} inserted tokens answer to "${name}"`, 'name the token by its file');
    throw new TokenError('NTLS_ERR_UNKNOWN_TOKEN', `no inserted token answers to "${name}"`, `see \`ntls token list\`; images go in ${this.folder}`);
  }

  private uniqueByLabel(name: string): DeployedEntry {
    const matches = this.deployedList.all().filter((e) => e.label === name);
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw new TokenError('NTLS_ERR_TOKEN_AMBIGUOUS', `${matches.length} deployed tokens are labelled "${name}"`, 'name the token by its serial number');
    throw new TokenError('NTLS_ERR_TOKEN_NOT_DEPLOYED', `no deployed token answers to "${name}"`, 'see `ntls token list`');
  }

  private busyError(name: string): TokenError {
    return new TokenError('NTLS_ERR_TOKEN_BUSY', `token ${name} is being backed up or restored`, 'wait until that ends');
  }

  private listing(device: Device): TokenListing {
    return this.list().find((r) => r.file === device.file)!;
  }

  private path(device: Device): string {
    return join(this.folder, device.file);
  }

  private emit(change: TokenChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure is its own; the others still hear of the change.
      }
    }
  }

  /** Folder changes and deploy/undeploy happen one at a time. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

// The token model: the slot table of mounted device tokens and the applications using them.
// Administration mounts and unmounts tokens (a partition created or deleted, a USB token
// deployed or ejected); the PKCS#11 calls are made through an Application, one per client
// application, which owns its sessions and login state.
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { LibraryInfo } from '../pkcs11/info.js';
import { Application, type ApplicationHost } from './application.js';
import type { Device, DeviceToken } from './device.js';
import { FindBudget } from './find-budget.js';
import { SlotTable, type Mount } from './slots.js';

/** A mounted token as the administrator sees it: the device's summary at the model's slot. */
export interface TokenSummary {
  /** The model's slot. */
  slotId: number;
  serial: string;
  /** The operator's name for it; clients cannot change it. */
  name: string;
  /** The token label, the client's. */
  label: string;
  initialized: boolean;
  /** null when the device cannot count them (a PKCS#11 module's token). */
  tokenObjects: number | null;
  /** Open sessions, every application's. */
  sessions: number;
}

export class TokenModel implements ApplicationHost {
  readonly slots = new SlotTable();
  private readonly applications = new Map<string, Application>();
  private nextSession = 1;
  private closed = false;

  constructor(readonly libraryInfo: LibraryInfo, readonly findBudget = new FindBudget()) {}

  /**
   * The view of one client application: its sessions and login state are its own. `owner`: the
   * client it belongs to, whose share of a device's resources its calls draw on (call-owner.ts).
   */
  application(id: string, owner?: string): Application {
    let app = this.applications.get(id);
    if (!app) {
      app = new Application(this, id, owner);
      this.applications.set(id, app);
    }
    return app;
  }

  /** Called by Application.finalize(): forgets an application that has closed everything. */
  drop(app: Application): void {
    if (this.applications.get(app.id) === app) this.applications.delete(app.id);
  }

  /**
   * A finalized application opens a session again. Refused (CKR_CRYPTOKI_NOT_INITIALIZED) when
   * another view took its id meanwhile: two views of one id would share session objects.
   */
  adopt(app: Application): void {
    if (this.closed) throw new Pkcs11Error(CKR.DEVICE_REMOVED, 'the token model has been closed');
    const other = this.applications.get(app.id);
    if (other !== undefined && other !== app) throw new Pkcs11Error(CKR.CRYPTOKI_NOT_INITIALIZED);
    this.applications.set(app.id, app);
  }

  newSessionHandle(): number {
    return this.nextSession++;
  }

  /** Puts a device's token at a slot of the model. */
  mount(slot: number, device: Device, deviceSlot: number): Mount {
    return this.slots.mount(slot, device, deviceSlot);
  }

  /** Every token of a device, each at its own slot number. */
  mountAll(device: Device): void {
    for (const token of device.tokens()) this.mount(token.slot, device, token.slot);
  }

  /** Takes a token away: every application's sessions on it end first, then its slot goes. */
  unmount(slot: number): void {
    const mount = this.slots.find(slot);
    if (!mount) return;
    for (const app of this.applications.values()) app.dropMount(mount);
    this.slots.remove(slot);
  }

  /** The mounted tokens, by slot, as the administrator lists them; only `device`'s when given. */
  tokens(device?: Device): TokenSummary[] {
    const out: TokenSummary[] = [];
    const byDevice = new Map<Device, DeviceToken[]>();
    for (const mount of this.slots.list()) {
      if (device !== undefined && mount.device !== device) continue;
      let tokens = byDevice.get(mount.device);
      if (!tokens) byDevice.set(mount.device, tokens = mount.device.tokens());
      const token = tokens.find((t) => t.slot === mount.deviceSlot);
      if (token) {
        out.push({
          slotId: mount.slot, serial: token.serial, name: token.name, label: token.label, initialized: token.initialized,
          tokenObjects: token.tokenObjects, sessions: mount.sessions.size,
        });
      }
    }
    return out;
  }

  /** Open sessions on the token at a slot, every application's. */
  sessionCount(slot: number): number {
    return this.slots.find(slot)?.sessions.size ?? 0;
  }

  /** Every application's sessions end; the devices stay open (their owners close them). */
  close(): void {
    for (const app of [...this.applications.values()]) app.finalize();
    this.closed = true;
  }
}

// One ntls partition mapped onto a token of a PKCS#11 module: its host process, and the state
// ntls keeps because the module sees a single application where ntls has many clients.
//
// PKCS#11 keeps login state per application and token, so every client logged in or not, the
// module has one state. ntls keeps each client's own: the module is logged in as the user while
// at least one client is (or while a configured PIN keeps it so), and a client's login is
// checked against the PIN the module accepted (a salted digest, in memory only). Objects a
// client may not see (private ones while it is not logged in, other clients' session objects)
// never reach it; see PassthroughApplication.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../log/logger.js';
import { CKR, CKU, Pkcs11Error } from '../../pkcs11/constants.js';
import type { MechanismInfo } from '../../pkcs11/info.js';
import { HostLink } from './host-link.js';
import type { HostReady, HostTokenInfo, ObjectFacts } from './host-protocol.js';

export interface TokenMapping {
  /** The ntls partition name clients are assigned. */
  partition: string;
  label: string | null;
  serial: string | null;
  pin: string | null;
}

export type ModuleLogin = 'none' | 'user' | 'so';

const RESTART_DELAYS_MS = [250, 1000, 5000, 30_000];

export class TokenLink {
  readonly host: HostLink;
  ready: HostReady | null = null;
  mechanisms = new Map<number, MechanismInfo>();
  /** Bumped whenever the host is lost: sessions of an older generation are gone. */
  generation = 0;
  login: ModuleLogin = 'none';
  /** Applications logged in as the user, and the one logged in as SO. */
  readonly users = new Set<string>();
  so: string | null = null;
  /** The module's sessions ntls has open on this token: C_InitToken needs none. */
  readonly moduleSessions = new Set<number>();
  /**
   * What ntls learned of the module's objects (token? private?), by handle. Forgotten whenever
   * the module's login changes: a module may number its objects anew then (SoftHSM2 does).
   */
  readonly facts = new Map<number, ObjectFacts>();
  private pinCheck: { salt: Buffer; digest: Buffer } | null = null;
  /** Wrong PINs checked here (the module, logged in, does not see them) since the module logged in. */
  private failedChecks = 0;
  /** Logins and logouts one at a time: two first logins must not both go to the module. */
  private loginQueue: Promise<unknown> = Promise.resolve();
  private restarts = 0;
  private closed = false;

  constructor(readonly mapping: TokenMapping, module: string, callTimeoutMs: number, private readonly maxFailedLogins: number, logger?: Logger) {
    this.host = new HostLink({
      start: { module, label: mapping.label, serial: mapping.serial, pin: mapping.pin },
      callTimeoutMs,
      logger,
      onLost: () => this.lost(),
    });
  }

  async start(): Promise<void> {
    const ready = await this.host.start();
    this.ready = ready;
    this.mechanisms = new Map(ready.mechanisms.map((m) => [m.type, { minKeySize: m.minKeySize, maxKeySize: m.maxKeySize, flags: m.flags }]));
    this.login = ready.loggedIn ? 'user' : 'none';
    if (this.mapping.pin !== null) this.rememberPin(this.mapping.pin);
    this.restarts = 0;
  }

  get info(): HostTokenInfo | null {
    return this.ready?.token ?? null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.host.close();
  }

  /** The host died or hung: every session and login is gone; start it again, backing off. */
  private lost(): void {
    this.generation += 1;
    this.users.clear();
    this.so = null;
    this.login = 'none';
    this.failedChecks = 0;
    this.moduleSessions.clear();
    this.facts.clear();
    this.ready = null;
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closed) return;
    const delay = RESTART_DELAYS_MS[Math.min(this.restarts, RESTART_DELAYS_MS.length - 1)]!;
    this.restarts += 1;
    setTimeout(() => {
      if (this.closed) return;
      this.start().catch(() => this.scheduleRestart());
    }, delay).unref();
  }

  roleOf(app: string): 'user' | 'so' | null {
    if (this.users.has(app)) return 'user';
    return this.so === app ? 'so' : null;
  }

  private serially<T>(body: () => Promise<T>): Promise<T> {
    const run = this.loginQueue.then(body, body);
    this.loginQueue = run.catch(() => undefined);
    return run;
  }

  /** C_Login of one client, as PKCS#11 would answer it had the client the token to itself. */
  loginClient(app: string, userType: number, pin: string): Promise<void> {
    return this.serially(() => this.login1(app, userType, pin));
  }

  private async login1(app: string, userType: number, pin: string): Promise<void> {
    if (userType !== CKU.USER && userType !== CKU.SO) throw new Pkcs11Error(CKR.USER_TYPE_INVALID);
    const role = this.roleOf(app);
    if (role !== null) throw new Pkcs11Error(role === (userType === CKU.USER ? 'user' : 'so') ? CKR.USER_ALREADY_LOGGED_IN : CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
    const wanted: ModuleLogin = userType === CKU.USER ? 'user' : 'so';
    if (this.login === 'none') {
      await this.host.request('login', userType, pin, null);
      this.facts.clear();
      this.login = wanted;
      if (wanted === 'user') this.rememberPin(pin);
    } else if (this.login !== wanted) {
      throw new Pkcs11Error(CKR.USER_ANOTHER_ALREADY_LOGGED_IN, `the token is logged in as ${this.login === 'so' ? 'SO' : 'user'} by another client`);
    } else if (wanted === 'so') {
      throw new Pkcs11Error(CKR.USER_ANOTHER_ALREADY_LOGGED_IN, 'one SO at a time');
    } else {
      // The module will not see this attempt: ntls counts it, as the module would have.
      if (this.failedChecks >= this.maxFailedLogins) throw new Pkcs11Error(CKR.PIN_LOCKED, 'too many wrong PINs while the token is logged in');
      if (!this.pinMatches(pin)) {
        this.failedChecks += 1;
        throw new Pkcs11Error(this.failedChecks >= this.maxFailedLogins ? CKR.PIN_LOCKED : CKR.PIN_INCORRECT);
      }
      this.failedChecks = 0;
    }
    if (wanted === 'user') this.users.add(app);
    else this.so = app;
  }

  /** The client logs out (or closed its last session here); the module follows when nobody is left. */
  logoutClient(app: string): Promise<void> {
    return this.serially(() => this.logout1(app));
  }

  private async logout1(app: string): Promise<void> {
    const role = this.roleOf(app);
    if (role === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
    if (role === 'user') this.users.delete(app);
    else this.so = null;
    if (this.users.size > 0 || this.so !== null) return;
    const keep = this.mapping.pin !== null && this.login === 'user';
    if (keep || this.login === 'none') return;
    this.login = 'none';
    this.failedChecks = 0;
    this.facts.clear();
    await this.host.request('logout').catch(() => undefined);
    if (this.mapping.pin !== null) {
      await this.host.request('login', CKU.USER, this.mapping.pin, null);
      this.login = 'user';
    }
  }

  /** A new user PIN was set by a logged-in client: later logins are checked against it. */
  pinChanged(pin: string): void {
    this.rememberPin(pin);
  }

  /** After C_InitToken the token has no user PIN and no login. */
  reset(): void {
    this.facts.clear();
    this.failedChecks = 0;
    this.users.clear();
    this.so = null;
    this.login = 'none';
    this.pinCheck = null;
  }

  private rememberPin(pin: string): void {
    const salt = randomBytes(16);
    this.pinCheck = { salt, digest: createHash('sha256').update(salt).update(pin).digest() };
  }

  private pinMatches(pin: string): boolean {
    if (!this.pinCheck) return false;
    const digest = createHash('sha256').update(this.pinCheck.salt).update(pin).digest();
    return timingSafeEqual(digest, this.pinCheck.digest);
  }
}

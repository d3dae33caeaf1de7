// One connected client's command processor instance: p11-kit RPC requests in, calls on the
// client's own token-model application (its sessions, handles and login state) through its
// slots, answers out. Every request, NTLS's own included, takes the same path: decode, the
// call table's row, encode.
import type { LineBudget } from '../../log/line-budget.js';
import type { AuditEvent } from '../../audit/audit-log.js';
import { Catalogue } from '../../log/catalogue.js';
import type { Logger } from '../../log/logger.js';
import { Pkcs11Error, CKF, CKR, CKU } from '../../pkcs11/constants.js';
import type { Frame } from '../../protocol/frame.js';
import {
  decodeRequest, encodeErrorResponse, encodeResponse, negotiateVersion, peekCallId, peekSession, P11KitErrorCode,
  type CallName, type P11KitResponse,
} from '../../protocol/p11kit/index.js';
import { roleOfUserType, type Application, type ClientSlots, type TokenModel } from '../../token/index.js';
import type { ConnectionInfo, ProcessorInstance } from '../contract.js';
import { ApplicationIds } from './application-ids.js';
import type { CallStatistics } from './call-statistics.js';
import { callTable, type ApplicationId, type ApplicationSwitch, type CallContext } from './calls.js';

const EMPTY = Buffer.alloc(0);

/** The operation (by its mechanism-info flag) a call goes on with, or ends. */
const OPERATION_OF_CALL: Partial<Record<CallName, number>> = {
  C_Encrypt: CKF.ENCRYPT, C_EncryptUpdate: CKF.ENCRYPT, C_EncryptFinal: CKF.ENCRYPT,
  C_Decrypt: CKF.DECRYPT, C_DecryptUpdate: CKF.DECRYPT, C_DecryptFinal: CKF.DECRYPT,
  C_Digest: CKF.DIGEST, C_DigestUpdate: CKF.DIGEST, C_DigestKey: CKF.DIGEST, C_DigestFinal: CKF.DIGEST,
  C_Sign: CKF.SIGN, C_SignUpdate: CKF.SIGN, C_SignFinal: CKF.SIGN,
  C_Verify: CKF.VERIFY, C_VerifyUpdate: CKF.VERIFY, C_VerifyFinal: CKF.VERIFY,
};

export interface InstanceOptions {
  model: TokenModel;
  applicationIds: ApplicationIds;
  statistics: CallStatistics;
  logger: Logger;
  connection: ConnectionInfo;
  view: () => ClientSlots;
  maxOutputBytes: number;
  /** Seconds without a command before the client is ended (0: no keepalive timer). */
  commandKeepalive: number;
  /**
   * Before each call: brings the device's view up to a store other nodes share (docs/ha.md), so a
   * call sees what was acknowledged anywhere before it. Never rejects.
   */
  beforeCall?: () => Promise<void>;
  onClose(): void;
  /** The audit trail: failed logins and logins refused on a locked role. */
  audit?(event: AuditEvent): void;
  /** How many `unsupported command` lines a client may write (per client, across its links). */
  unsupportedLines?: LineBudget;
}

export class ClientInstance implements ProcessorInstance, ApplicationSwitch {
  private version = 0;
  private app: Application;
  /** The application-id mapping this connection uses, if it named one. */
  private appIdKey: string | null = null;
  private keepalive: NodeJS.Timeout | null = null;

  constructor(private readonly options: InstanceOptions) {
    this.app = options.model.application(this.connectionAppId(), this.options.connection.client);
    if (options.commandKeepalive > 0) this.startKeepalive(options.commandKeepalive);
  }

  private connectionAppId(): string {
    return `connection:${this.options.connection.id}`;
  }

  /**
   * The client command keepalive: a client that sends no command (a keepalive counts) for the
   * configured time is ended. The datapath's receive timer watches the socket; this watches
   * the commands, so a peer that trickles bytes without completing a request is ended too.
   */
  private startKeepalive(seconds: number): void {
    const { logger, connection } = this.options;
    try {
      this.keepalive = setTimeout(() => {
        logger.log(Catalogue.receiveTimerExpired, { client: connection.client, peer: connection.peer });
        connection.terminate();
      }, seconds * 1000);
    } catch {
      logger.log(Catalogue.keepaliveTimerCreateFailed, { peer: connection.peer });
      logger.log(Catalogue.keepaliveDisabled, { peer: connection.peer });
    }
  }

  negotiateVersion(clientVersion: number): number {
    this.version = negotiateVersion(clientVersion);
    return this.version;
  }

  async process(request: Frame): Promise<Frame> {
    this.keepalive?.refresh();
    return { callCode: request.callCode, options: EMPTY, body: await this.answer(request.body) };
  }

  /**
   * A request the data path could not hold: CKR_HOST_MEMORY. As any failed step does (PKCS#11),
   * it ends the operation it was part of, on its session: a C_DigestUpdate refused must not
   * leave the digest going on without its part. `request.body` is the whole body, or only its
   * head for one skipped for its size.
   */
  refuse(request: Frame): Frame {
    this.done('refused', CKR.HOST_MEMORY, performance.now());
    const named = peekSession(request.refused?.head ?? request.body);
    const flag = named ? OPERATION_OF_CALL[named.call] : undefined;
    if (named && flag !== undefined) this.app.C_SessionCancel(named.session, flag).catch(() => undefined);
    return { callCode: request.callCode, options: EMPTY, body: encodeErrorResponse(CKR.HOST_MEMORY) };
  }

  close(): void {
    if (this.keepalive) clearTimeout(this.keepalive);
    this.leaveApplication();
    const { client, peer } = this.options.connection;
    this.options.logger.log(Catalogue.processorInstanceRemoved, { client, peer });
    this.options.onClose();
  }

  /**
   * The client lost these model slots: its sessions there end and it is logged out of them, at
   * once (the device closes its side after), so no call sees a session on a slot it lost.
   */
  revokeSlots(modelSlots: readonly number[]): void {
    closeSessionsOn(this.app, modelSlots);
  }

  /**
   * Who owns this connection's application ids: its client, or the local socket's operator under
   * a name no registered client can have (a client registered as "local" is another owner).
   */
  private get appIdOwner(): string {
    return this.options.connection.local ? ApplicationIds.LOCAL_OWNER : this.options.connection.client;
  }

  /** An application id's sessions on slots outside this connection's view end as it attaches (a view changed while nobody was connected). */
  private attached(app: Application): Application {
    const view = this.options.view();
    closeSessionsOn(app, this.options.model.tokens().map((t) => t.slotId).filter((slot) => !view.includes(slot)));
    return app;
  }

  private async answer(body: Buffer): Promise<Buffer> {
    const started = performance.now();
    const decoded = decodeRequest(body, { version: this.version });
    if (!decoded.ok) {
      if (decoded.error.code === P11KitErrorCode.BadCallId) this.unsupported(peekCallId(body));
      this.done('malformed', decoded.error.rv, started);
      return encodeErrorResponse(decoded.error.rv);
    }
    const request = decoded.value;
    if (this.options.beforeCall) await this.options.beforeCall();
    const handler = callTable[request.call] as ((args: unknown, ctx: CallContext) => unknown) | undefined;
    if (!handler) {
      this.unsupported(peekCallId(body));
      this.done(request.call, CKR.FUNCTION_NOT_SUPPORTED, started);
      return encodeErrorResponse(CKR.FUNCTION_NOT_SUPPORTED);
    }
    let args: unknown;
    try {
      args = await handler(request.args, { app: this.app, view: this.options.view(), maxOutputBytes: this.options.maxOutputBytes, version: this.version, applications: this });
    } catch (error) {
      if (error instanceof Pkcs11Error) {
        this.done(request.call, error.rv, started, request.args);
        return encodeErrorResponse(error.rv);
      }
      throw error;
    }
    const encoded = encodeResponse({ call: request.call, args } as P11KitResponse);
    if (!encoded.ok) {
      this.done(request.call, CKR.GENERAL_ERROR, started);
      return encodeErrorResponse(CKR.GENERAL_ERROR);
    }
    this.done(request.call, request.call === 'C_GetAttributeValue' ? (args as { result: number }).result : CKR.OK, started);
    return encoded.value;
  }

  // --- NTLS application ids --------------------------------------------------------------------

  setApplicationId(id: ApplicationId): void {
    const { applicationIds, connection } = this.options;
    const key = ApplicationIds.keyOf(this.appIdOwner, id);
    if (this.appIdKey === key) return;
    this.leaveApplication();
    this.app = this.attached(applicationIds.attach(this.appIdOwner, id, connection.id, connection.peer));
    this.appIdKey = key;
  }

  openAccess(id: ApplicationId): void {
    const { applicationIds, connection } = this.options;
    const key = ApplicationIds.keyOf(this.appIdOwner, id);
    applicationIds.checkOpenAccess(this.appIdOwner, id);
    // The id this connection already uses stays attached: leaving it first would end a transient
    // mapping, its sessions and login with it, just before making it persistent.
    if (this.appIdKey !== key) this.leaveApplication();
    this.app = this.attached(applicationIds.openAccess(this.appIdOwner, id, connection.id, connection.peer));
    this.appIdKey = key;
  }

  closeAccess(id: ApplicationId): void {
    const { applicationIds, connection } = this.options;
    const closingOwn = this.appIdKey === ApplicationIds.keyOf(this.appIdOwner, id);
    applicationIds.closeAccess(this.appIdOwner, id, connection.id, connection.peer);
    if (closingOwn) {
      this.appIdKey = null;
      this.app = this.options.model.application(this.connectionAppId(), this.options.connection.client);
    }
  }

  /** Leaves the current application: a connection's own ends; an application id is detached. */
  private leaveApplication(): void {
    const { applicationIds, connection } = this.options;
    if (this.appIdKey) applicationIds.detach(this.appIdKey, connection.id, connection.peer);
    else this.app.finalize();
    this.appIdKey = null;
  }

  private done(call: string, rv: number, started: number, args?: unknown): void {
    this.options.statistics.record(call, rv, (performance.now() - started) / 1000);
    if (call === 'C_Login' && (rv === CKR.PIN_INCORRECT || rv === CKR.PIN_LOCKED) && this.options.audit) {
      const { client, peer } = this.options.connection;
      this.options.audit({
        who: { kind: 'client', name: client, peer }, action: rv === CKR.PIN_LOCKED ? 'login.locked' : 'login.failed',
        target: this.loginTarget(args as { session: number; userType: number }),
        result: 'refused', code: rv === CKR.PIN_LOCKED ? 'CKR_PIN_LOCKED' : 'CKR_PIN_INCORRECT',
      });
    }
  }

  /** Which partition and role a refused C_Login was for, as the operator names them. */
  private loginTarget(args: { session: number; userType: number }): Record<string, unknown> {
    // The roles as `ntls partition show` names them (so, co, cu); a key's own login is context-specific.
    const role = args.userType === CKU.CONTEXT_SPECIFIC ? 'context-specific' : roleOfUserType(args.userType);
    try {
      const slot = this.app.C_GetSessionInfo(args.session).slotId;
      const token = this.options.model.tokens().find((t) => t.slotId === slot);
      return token ? { partition: token.name, serial: token.serial, role } : { role };
    } catch {
      return { role };
    }
  }

  private unsupported(callId: number): void {
    if (this.options.unsupportedLines?.take(this.options.connection.client) === false) return;
    const shown = callId < 0 ? 0 : callId;
    this.options.logger.log(Catalogue.unsupportedCommand, { command: `0x${shown.toString(16).padStart(8, '0')}` });
  }
}

/** An application's sessions on these model slots end, and with them its login there. */
export function closeSessionsOn(app: Application, modelSlots: readonly number[]): void {
  for (const slot of modelSlots) {
    try {
      const closing = app.C_CloseAllSessions(slot);
      if (closing instanceof Promise) closing.catch(() => undefined);
    } catch {
      // A token taken away meanwhile has no sessions left to close.
    }
  }
}

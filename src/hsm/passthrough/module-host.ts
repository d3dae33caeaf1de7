// A module host: the process that loads a PKCS#11 module (through pkcs11js) for one ntls
// partition and performs the daemon's requests on that partition's token. It runs as a child
// process so that a module that crashes or hangs takes only this process with it; the daemon's
// event loop never waits on the module. Requests on one session are performed in order; the
// long ones (signatures, encryption, key generation) run on the thread pool through pkcs11js's
// asynchronous calls, so that sessions proceed side by side.
import process from 'node:process';
import pkcs11js from 'pkcs11js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import { CKA, CKF, CKR, CKU, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Attribute, Template } from '../../pkcs11/attributes.js';
import type {
  CryptoStep, HostImplementation, HostMechanism, HostOp, HostRequest, HostResponse, HostSlotInfo, HostStart, HostTokenInfo, ObjectFacts, RawAttribute,
} from './host-protocol.js';

const module = new pkcs11js.PKCS11();
let slot: Buffer | null = null;
/** Kept open for the host's life: PKCS#11 logs an application out when its last session closes. */
let anchor: Buffer | null = null;

function handle(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

const number = (value: Buffer): number => Number(value.readBigUInt64LE(0));

function theSlot(): Buffer {
  if (!slot) throw new Pkcs11Error(CKR.CRYPTOKI_NOT_INITIALIZED, 'the host has not started');
  return slot;
}

const ulongs = (values: readonly number[]): Buffer => {
  const out = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => out.writeBigUInt64LE(BigInt(v), i * 8));
  return out;
};

function moduleTemplate(template: Template): pkcs11js.Template {
  return template.map((attribute: Attribute): pkcs11js.Attribute => {
    const { type, value } = attribute;
    if (typeof value === 'boolean' || typeof value === 'number' || Buffer.isBuffer(value)) return { type, value };
    if (value.length > 0 && typeof value[0] === 'object') {
      // pkcs11js passes flat values only; a nested template cannot reach the module.
      throw new Pkcs11Error(CKR.ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)}: nested templates are not passed to a PKCS#11 module`);
    }
    return { type, value: ulongs(value as readonly number[]) };
  });
}

function moduleMechanism(mechanism: Mechanism): pkcs11js.Mechanism {
  const p = mechanism.parameter;
  if (p === null) return { mechanism: mechanism.type, parameter: undefined };
  switch (p.kind) {
    case 'bytes': return { mechanism: mechanism.type, parameter: p.value.length > 0 ? p.value : undefined };
    case 'pss': {
      const parameter: pkcs11js.RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: p.hashAlg, mgf: p.mgf, saltLen: p.saltLength };
      return { mechanism: mechanism.type, parameter };
    }
    case 'oaep': return {
      mechanism: mechanism.type,
      parameter: { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg: p.hashAlg, mgf: p.mgf, source: p.source, sourceData: p.sourceData ?? undefined } as pkcs11js.RsaOAEP,
    };
    case 'gcm': return {
      mechanism: mechanism.type,
      parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv: p.iv, aad: p.aad, ivBits: p.iv.length * 8, tagBits: p.tagBits } as pkcs11js.AesGCM,
    };
    case 'ctr': {
      // CK_AES_CTR_PARAMS: CK_ULONG ulCounterBits, CK_BYTE cb[16], passed as its bytes.
      const raw = Buffer.alloc(24);
      raw.writeBigUInt64LE(BigInt(p.counterBits));
      p.counterBlock.copy(raw, 8);
      return { mechanism: mechanism.type, parameter: raw };
    }
    case 'ecdh1': return {
      mechanism: mechanism.type,
      parameter: { type: pkcs11js.CK_PARAMS_EC_DH, kdf: p.kdf, sharedData: p.sharedData ?? undefined, publicData: p.publicData } as pkcs11js.ECDH1,
    };
  }
}

const bool = (value: Buffer | undefined): boolean => value !== undefined && value.length > 0 && value[0] !== 0;

function facts(session: Buffer, object: Buffer): ObjectFacts {
  const [token, priv] = module.C_GetAttributeValue(session, object, [{ type: CKA.TOKEN }, { type: CKA.PRIVATE }]);
  return { handle: number(object), token: bool(token?.value), private: bool(priv?.value) };
}

/** Output room for a single-part step: enough for any block padding, tag or RSA modulus. */
const room = (input: number) => Buffer.alloc(input + 4096);

const trim = (text: string) => text.replace(/[ \0]+$/, '');

function tokenInfo(): HostTokenInfo {
  const t = module.C_GetTokenInfo(theSlot());
  return {
    label: trim(t.label), manufacturerId: trim(t.manufacturerID), model: trim(t.model), serialNumber: trim(t.serialNumber), flags: t.flags,
    maxSessionCount: t.maxSessionCount, sessionCount: t.sessionCount, maxRwSessionCount: t.maxRwSessionCount,
    rwSessionCount: t.rwSessionCount, maxPinLen: t.maxPinLen, minPinLen: t.minPinLen,
    hardwareVersion: t.hardwareVersion, firmwareVersion: t.firmwareVersion, utcTime: t.utcTime,
  };
}

function findSlot(options: HostStart): Buffer {
  for (const candidate of module.C_GetSlotList(true)) {
    const t = module.C_GetTokenInfo(candidate);
    if (options.serial !== null && trim(t.serialNumber) === options.serial) return candidate;
    if (options.serial === null && options.label !== null && trim(t.label) === options.label) return candidate;
  }
  const wanted = options.serial !== null ? `serial ${options.serial}` : `label "${options.label}"`;
  throw new Pkcs11Error(CKR.TOKEN_NOT_PRESENT, `no token with ${wanted} in ${options.module}`);
}

const steps = {
  encrypt: { init: 'C_EncryptInit', single: 'C_Encrypt', update: 'C_EncryptUpdate', final: 'C_EncryptFinal' },
  decrypt: { init: 'C_DecryptInit', single: 'C_Decrypt', update: 'C_DecryptUpdate', final: 'C_DecryptFinal' },
  sign: { init: 'C_SignInit', single: 'C_Sign', update: 'C_SignUpdate', final: 'C_SignFinal' },
  verify: { init: 'C_VerifyInit', single: null, update: 'C_VerifyUpdate', final: null },
  digest: { init: 'C_DigestInit', single: 'C_Digest', update: 'C_DigestUpdate', final: 'C_DigestFinal' },
} as const;

type Callable = (...args: unknown[]) => unknown;
const asyncSingle = { encrypt: 'C_EncryptAsync', decrypt: 'C_DecryptAsync', sign: 'C_SignAsync', digest: 'C_DigestAsync', verify: null } as const;
const asyncFinal = { encrypt: 'C_EncryptFinalAsync', decrypt: 'C_DecryptFinalAsync', sign: 'C_SignFinalAsync', digest: 'C_DigestFinalAsync', verify: null } as const;
const call = (name: string, ...args: unknown[]): unknown => (module as unknown as Record<string, Callable>)[name]!.apply(module, args);

const ops: HostImplementation = {
  start(options) {
    module.load(options.module);
    // The host calls the module from one thread, but a module may start threads of its own.
    module.C_Initialize({ flags: CKF.OS_LOCKING_OK });
    slot = findSlot(options);
    anchor = module.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    let loggedIn = false;
    if (options.pin !== null) {
      module.C_Login(anchor, CKU.USER, options.pin);
      loggedIn = true;
    }
    const mechanisms: HostMechanism[] = module.C_GetMechanismList(slot).map((type) => {
      const info = module.C_GetMechanismInfo(slot!, type);
      return { type, minKeySize: info.minKeySize, maxKeySize: info.maxKeySize, flags: info.flags };
    });
    return { slot: number(slot), token: tokenInfo(), mechanisms, loggedIn };
  },
  tokenInfo,
  slotInfo(): HostSlotInfo {
    const s = module.C_GetSlotInfo(theSlot());
    return {
      slotDescription: trim(s.slotDescription), manufacturerId: trim(s.manufacturerID), flags: s.flags,
      hardwareVersion: s.hardwareVersion, firmwareVersion: s.firmwareVersion,
    };
  },
  openSession: (flags) => number(module.C_OpenSession(theSlot(), flags)),
  closeSession: (session) => module.C_CloseSession(handle(session)),
  login: (userType, pin, session) => module.C_Login(session === null ? anchor! : handle(session), userType, pin),
  logout: () => module.C_Logout(anchor!),
  initToken(soPin, label) {
    // C_InitToken needs every session of the token closed, the host's own included.
    module.C_CloseAllSessions(theSlot());
    anchor = null;
    try {
      module.C_InitToken(theSlot(), soPin, label);
    } finally {
      anchor = module.C_OpenSession(theSlot(), CKF.SERIAL_SESSION | CKF.RW_SESSION);
    }
  },
  initPin: (session, pin) => module.C_InitPIN(handle(session), pin),
  setPin: (session, oldPin, newPin) => module.C_SetPIN(handle(session), oldPin, newPin),
  createObject: (session, template) => facts(handle(session), module.C_CreateObject(handle(session), moduleTemplate(template))),
  copyObject: (session, object, template) => facts(handle(session), module.C_CopyObject(handle(session), handle(object), moduleTemplate(template))),
  destroyObject: (session, object) => module.C_DestroyObject(handle(session), handle(object)),
  facts: (session, object) => facts(handle(session), handle(object)),
  getAttributes(session, object, types) {
    // One call per attribute: the module's per-attribute refusals (sensitive, unknown) are kept.
    return types.map((type): RawAttribute => {
      try {
        const [read] = module.C_GetAttributeValue(handle(session), handle(object), [{ type }]);
        return { type, value: read?.value ?? Buffer.alloc(0), rv: CKR.OK };
      } catch (error) {
        const rv = rvOf(error);
        if (rv === CKR.ATTRIBUTE_SENSITIVE || rv === CKR.ATTRIBUTE_TYPE_INVALID) return { type, value: null, rv };
        throw error;
      }
    });
  },
  setAttributes: (session, object, template) => module.C_SetAttributeValue(handle(session), handle(object), moduleTemplate(template)),
  findAll(session, template) {
    const s = handle(session);
    module.C_FindObjectsInit(s, moduleTemplate(template));
    const found: Buffer[] = [];
    try {
      for (;;) {
        const batch = module.C_FindObjects(s, 256);
        found.push(...batch);
        if (batch.length < 256) break;
      }
    } finally {
      module.C_FindObjectsFinal(s);
    }
    return found.map((object) => facts(s, object));
  },
  generateKey: async (session, mechanism, template) =>
    facts(handle(session), await module.C_GenerateKeyAsync(handle(session), moduleMechanism(mechanism), moduleTemplate(template))),
  async generateKeyPair(session, mechanism, publicTemplate, privateTemplate) {
    const s = handle(session);
    const pair = await module.C_GenerateKeyPairAsync(s, moduleMechanism(mechanism), moduleTemplate(publicTemplate), moduleTemplate(privateTemplate));
    return { publicKey: facts(s, pair.publicKey), privateKey: facts(s, pair.privateKey) };
  },
  wrapKey: (session, mechanism, wrappingKey, key) =>
    module.C_WrapKey(handle(session), moduleMechanism(mechanism), handle(wrappingKey), handle(key), Buffer.alloc(65536)),
  unwrapKey: (session, mechanism, unwrappingKey, wrapped, template) =>
    facts(handle(session), module.C_UnwrapKey(handle(session), moduleMechanism(mechanism), handle(unwrappingKey), wrapped, moduleTemplate(template))),
  deriveKey: (session, mechanism, baseKey, template) =>
    facts(handle(session), module.C_DeriveKey(handle(session), moduleMechanism(mechanism), handle(baseKey), moduleTemplate(template))),
  cryptoInit(step, session, mechanism, key) {
    const args: unknown[] = [handle(session), moduleMechanism(mechanism)];
    if (step !== 'digest') args.push(handle(key!));
    call(steps[step].init, ...args);
  },
  async single(step, session, data) {
    const name = asyncSingle[step];
    if (!name) throw new Pkcs11Error(CKR.FUNCTION_NOT_SUPPORTED, `no single-part ${step}`);
    return await (call(name, handle(session), data, room(data.length)) as Promise<Buffer>);
  },
  update(step: CryptoStep, session, data) {
    const name = steps[step].update;
    if (step === 'encrypt' || step === 'decrypt') return call(name, handle(session), data, room(data.length)) as Buffer;
    call(name, handle(session), data);
    return null;
  },
  async final(step, session) {
    const name = asyncFinal[step];
    if (!name) throw new Pkcs11Error(CKR.FUNCTION_NOT_SUPPORTED, `no final ${step}`);
    return await (call(name, handle(session), room(0)) as Promise<Buffer>);
  },
  async verify(session, data, signature) {
    if (!await module.C_VerifyAsync(handle(session), data, signature)) throw new Pkcs11Error(CKR.SIGNATURE_INVALID, 'signature invalid');
  },
  async verifyFinal(session, signature) {
    if (!await module.C_VerifyFinalAsync(handle(session), signature)) throw new Pkcs11Error(CKR.SIGNATURE_INVALID, 'signature invalid');
  },
  digestKey: (session, key) => module.C_DigestKey(handle(session), handle(key)),
  random: (session, length) => module.C_GenerateRandom(handle(session), Buffer.alloc(length)),
  seedRandom: (session, seed) => { module.C_SeedRandom(handle(session), seed); },
};

function rvOf(error: unknown): number {
  if (error instanceof Pkcs11Error) return error.rv;
  if (error instanceof pkcs11js.Pkcs11Error && typeof error.code === 'number') return error.code;
  return CKR.GENERAL_ERROR;
}

async function answer(request: HostRequest): Promise<HostResponse> {
  try {
    const op = ops[request.op] as (...args: unknown[]) => unknown;
    const value = await op(...request.args);
    return { id: request.id, ok: true, value: value ?? null };
  } catch (error) {
    return { id: request.id, ok: false, rv: rvOf(error), message: error instanceof Error ? error.message : String(error) };
  }
}

/** The session a request works in (its first argument), or null for the token's own requests. */
const SESSIONLESS = new Set<HostOp>(['start', 'tokenInfo', 'slotInfo', 'openSession', 'logout', 'initToken']);
function laneOf(request: HostRequest): number | null {
  if (SESSIONLESS.has(request.op)) return null;
  if (request.op === 'login') return (request.args[2] as number | null) ?? null;
  if (request.op === 'cryptoInit' || request.op === 'single' || request.op === 'update' || request.op === 'final') return request.args[1] as number;
  return request.args[0] as number;
}

/** Per session, the request last queued: the next one on that session starts when it ends. */
const lanes = new Map<number, Promise<unknown>>();
let tokenWide: Promise<unknown> = Promise.resolve();

process.on('message', (request: HostRequest) => {
  const lane = laneOf(request);
  // Token-wide requests wait for nothing but earlier token-wide ones (they are quick); a
  // session's requests wait for that session's earlier ones.
  const before = lane === null ? tokenWide : lanes.get(lane) ?? Promise.resolve();
  const done = before.then(() => answer(request)).then((response) => { process.send!(response); });
  if (lane === null) tokenWide = done;
  else {
    lanes.set(lane, done);
    void done.then(() => { if (lanes.get(lane) === done) lanes.delete(lane); });
  }
});
process.on('disconnect', () => {
  try {
    if (slot) module.C_Finalize();
  } finally {
    process.exit(0);
  }
});

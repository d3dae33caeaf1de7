// The edges of libntls-pkcs11.so's PKCS#11 interface, through the C program of the module tests
// (fixtures/module-check.c, built with cc, loading the module with dlopen):
//   - PKCS#11 3.0: C_GetInterfaceList and C_GetInterface (before C_Initialize too), C_LoginUser
//     (C_Login when there is no username; the server has no named users), C_SessionCancel, the
//     message-based functions (CKR_FUNCTION_NOT_SUPPORTED: the server has no such calls);
//   - arguments refused before anything goes out, as SoftHSM2 refuses them: a NULL mechanism
//     pointer and a NULL template with a count are CKR_ARGUMENTS_BAD, whatever the session; the
//     link and the session are whole afterwards. A NULL length pointer (or NULL data with a
//     length) is CKR_ARGUMENTS_BAD too, and ends the operation on the server, as PKCS#11 says.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain } from '../support/e2e.js';
import { buildModuleCheck, moduleCheck, moduleWorld, PIN, type ModuleWorld } from './support.js';

let world: ModuleWorld;
let check: string;

const MESSAGE_FUNCTIONS = [
  'C_MessageEncryptInit', 'C_EncryptMessage', 'C_EncryptMessageBegin', 'C_EncryptMessageNext', 'C_MessageEncryptFinal',
  'C_MessageDecryptInit', 'C_DecryptMessage', 'C_DecryptMessageBegin', 'C_DecryptMessageNext', 'C_MessageDecryptFinal',
  'C_MessageSignInit', 'C_SignMessage', 'C_SignMessageBegin', 'C_SignMessageNext', 'C_MessageSignFinal',
  'C_MessageVerifyInit', 'C_VerifyMessage', 'C_VerifyMessageBegin', 'C_VerifyMessageNext', 'C_MessageVerifyFinal',
];

beforeAll(async () => {
  world = await moduleWorld('ines', { initialize: true });
  check = await buildModuleCheck(join(world.work, 'bin'));
});

afterAll(async () => {
  await world?.close();
});

describe('PKCS#11 3.0 functions of libntls-pkcs11.so', () => {
  let values: Map<string, string>;

  beforeAll(async () => {
    const r = await moduleCheck(check, world.module, ['v3', '0', PIN], { env: world.env });
    expect(r.result.status, explain(r.result)).toBe(0);
    expect(r.result.signal).toBe(null);
    values = r.values;
  });

  /** The check's printed values, by name. */
  function expectValues(expected: Record<string, string>): void {
    for (const [name, value] of Object.entries(expected)) expect(values.get(name), name).toBe(value);
  }

  it('C_GetInterfaceList: the count, CKR_BUFFER_TOO_SMALL with the count, CKR_ARGUMENTS_BAD without a count, the two interfaces', () => {
    expect(values.get('interface-count')).toBe('2');
    expect(values.get('interface-list-small')).toBe('CKR_BUFFER_TOO_SMALL 2');
    expect(values.get('interface-list-no-count')).toBe('CKR_ARGUMENTS_BAD');
    // Not fork safe in 3.0's sense (a child calls C_Initialize): no CKF_INTERFACE_FORK_SAFE.
    expect(values.get('interfaces')).toBe('PKCS 11 3.0/0,PKCS 11 2.40/0');
  });

  it('C_GetInterface: 3.0 by default, each version by name, CKR_ARGUMENTS_BAD for what is not offered', () => {
    expectValues({
      'interface-default': 'PKCS 11 3.0', 'interface-3.0': '3.0', 'interface-2.40': '2.40 C_GetFunctionList\'s',
      'interface-2.11': 'CKR_ARGUMENTS_BAD', 'interface-other-name': 'CKR_ARGUMENTS_BAD', 'interface-fork-safe': 'CKR_ARGUMENTS_BAD',
      'interface-no-out': 'CKR_ARGUMENTS_BAD',
    });
    // 68 functions of 2.40 (C_GetFunctionList included) and 24 of 3.0, none left empty.
    expect(values.get('functions-3.0')).toBe('92 empty=0');
  });

  it('before C_Initialize every 3.0 call answers CKR_CRYPTOKI_NOT_INITIALIZED', () => {
    expect(values.get('before-C_LoginUser')).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
    expect(values.get('before-C_SessionCancel')).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
    for (const name of MESSAGE_FUNCTIONS) expect(values.get(`before-${name}`), name).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
  });

  it('C_LoginUser without a username (NULL or empty) is C_Login; with one, CKR_FUNCTION_NOT_SUPPORTED', () => {
    expect(values.get('login-user-wrong-pin')).toBe('CKR_PIN_INCORRECT');
    expect(values.get('login-user-null')).toBe('CKR_OK');
    expect(values.get('login-user-null-state')).toBe('user');
    expect(values.get('login-user-again')).toBe('CKR_USER_ALREADY_LOGGED_IN');
    expect(values.get('login-user-empty')).toBe('CKR_OK');
    expect(values.get('login-user-empty-state')).toBe('user');
    expect(values.get('login-user-named')).toBe('CKR_FUNCTION_NOT_SUPPORTED');
    expect(values.get('login-user-named-state')).toBe('not user');
    expect(values.get('login-user-null-with-length')).toBe('CKR_ARGUMENTS_BAD');
    expect(values.get('login-user-bad-session')).toBe('CKR_SESSION_HANDLE_INVALID');
  });

  it('C_SessionCancel ends the operations it names (a search too), ignores one not active; the message-based functions: CKR_FUNCTION_NOT_SUPPORTED; the session signs afterwards', () => {
    expectValues({
      'session-cancel': 'CKR_OK', 'session-cancel-sign-after': 'CKR_OPERATION_NOT_INITIALIZED', 'session-cancel-digest-after': 'CKR_OK',
      'session-cancel-find': 'CKR_OK', 'session-cancel-find-after': 'CKR_OPERATION_NOT_INITIALIZED', 'session-cancel-none': 'CKR_OK',
      'session-cancel-bad-session': 'CKR_SESSION_HANDLE_INVALID',
    });
    for (const name of MESSAGE_FUNCTIONS) expect(values.get(name), name).toBe('CKR_FUNCTION_NOT_SUPPORTED');
    expect(values.get('after')).toBe('ok');
  });
});

describe('NULL mechanisms and NULL templates', () => {
  it('CKR_ARGUMENTS_BAD on a good session and on a bad one (as SoftHSM2), never a crash; nothing started, the link whole', async () => {
    const { result, values } = await moduleCheck(check, world.module, ['null-args', '0', PIN], { env: world.env });
    expect(result.status, explain(result)).toBe(0);
    expect(result.signal).toBe(null);
    expect(values.get('before-sign-init')).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
    expect(values.get('before-create')).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
    const checked = [...values.keys()].filter((k) => /^(bad-session-)?null-(mechanism|template)-/.test(k));
    expect(checked).toHaveLength(2 * 22);
    for (const name of checked) expect(values.get(name), name).toBe('CKR_ARGUMENTS_BAD');
    // PKCS#11: a failed call ends its operation; the module has the server end it (C_SessionCancel).
    for (const name of ['null-length-C_Sign', 'null-length-C_DigestFinal', 'null-data-C_DigestUpdate', 'null-length-C_EncryptUpdate']) {
      expect(values.get(name), name).toBe('CKR_ARGUMENTS_BAD then CKR_OPERATION_NOT_INITIALIZED');
    }
    expect(values.get('bad-session-null-length-C_Sign')).toBe('CKR_ARGUMENTS_BAD');
    expect(values.get('found-all')).toBe('yes');
    expect(values.get('after')).toBe('ok');
  });
});

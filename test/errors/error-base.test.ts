// Every ntls error extends NtlsError: callers test `instanceof` and the code, and read the hint
// and the cause from one place, whatever the kind of error.
import { describe, expect, it } from 'vitest';
import { failureLine, NtlsError } from '../../src/errors/ntls-error.js';
import { LogToolError } from '../../src/admin/logs/errors.js';
import { AdminError } from '../../src/admin/protocol.js';
import { ConfigError } from '../../src/config/load.js';
import { ClientError } from '../../src/client/errors.js';
import { explainFailure } from '../../src/client/failure.js';
import { MemberRefusal } from '../../src/client/ha-group.js';
import { LinkError } from '../../src/client/link.js';
import { ServerCredentialsError } from '../../src/daemon/server-credentials.js';
import { BindError } from '../../src/datapath/engine.js';
import { TcpKeepaliveError } from '../../src/datapath/tcp-keepalive.js';
import { TlsContextError } from '../../src/datapath/tls-context.js';
import { RegistryError } from '../../src/registry/client-registry.js';

const KNOWN_PREFIX = /^(RC_|CKR_|NTLS_ERR_)/;

describe('the error base', () => {
  const cause = new Error('underneath');
  const errno = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }) as NodeJS.ErrnoException;
  const cases: Array<[string, NtlsError, string]> = [
    ['ClientError', new ClientError('NTLS_ERR_FILE', 'cannot read x', 'check its permissions', cause), 'NTLS_ERR_FILE'],
    ['LinkError', new LinkError('NTLS_ERR_TLS', 'handshake failed', { errno: 'ECONNRESET', stage: 'connect', cause }), 'NTLS_ERR_TLS'],
    ['MemberRefusal', new MemberRefusal('NTLS_ERR_HA_MEMBER_REFUSED', 'no such partition', cause), 'NTLS_ERR_HA_MEMBER_REFUSED'],
    ['TcpKeepaliveError', new TcpKeepaliveError('setsockopt: bad', 'EINVAL', cause), 'NTLS_ERR_TCP_KEEPALIVE'],
    ['BindError', new BindError('127.0.0.1', 1792, errno), 'RC_SOCKET_ERROR'],
    ['TlsContextError', new TlsContextError('RC_SSL_CIPHER_LIST_ERROR', 'rejected', cause), 'RC_SSL_CIPHER_LIST_ERROR'],
    ['ServerCredentialsError', new ServerCredentialsError('could not be created', cause), 'RC_GENERAL_ERROR'],
    ['RegistryError', new RegistryError('NTLS_ERR_UNKNOWN_CLIENT', 'no client named "a"', cause), 'NTLS_ERR_UNKNOWN_CLIENT'],
  ];

  it.each(cases)('%s is an NtlsError with its code, name and cause', (name, error, code) => {
    expect(error).toBeInstanceOf(NtlsError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(code);
    expect(error.code).toMatch(KNOWN_PREFIX);
    expect(error.name).toBe(name);
    expect(error.cause).toBe(name === 'BindError' ? errno : cause);
  });

  it('keeps the public fields each kind had', () => {
    const client = new ClientError('NTLS_ERR_NO_PIN', 'no PIN given', 'give --pin');
    expect(client.hint).toBe('give --pin');
    expect(client.cause).toBeUndefined();
    const link = new LinkError('NTLS_ERR_TLS', 'x', { errno: 'ECONNRESET', stage: 'identity' });
    expect([link.errno, link.stage]).toEqual(['ECONNRESET', 'identity']);
    const keepalive = new TcpKeepaliveError('x', 'EBADF');
    expect(keepalive.errno).toBe('EBADF');
    const bind = new BindError('::1', 0, errno);
    expect([bind.address, bind.port, bind.cause.code]).toEqual(['::1', 0, 'EADDRINUSE']);
    expect(bind.message).toBe('cannot listen on ::1:0: EADDRINUSE');
  });

  it('explains any NtlsError by its code, message and hint, not as an unexpected failure', () => {
    const failure = explainFailure(new RegistryError('NTLS_ERR_UNKNOWN_CLIENT', 'no client named "a" is registered'));
    expect(failure.code).toBe('NTLS_ERR_UNKNOWN_CLIENT');
    expect(failure.line).toBe('no client named "a" is registered');
    const refusal = explainFailure(new MemberRefusal('NTLS_ERR_HA_MEMBER_REFUSED', 'server a does not expose p'));
    expect(refusal.code).toBe('NTLS_ERR_HA_MEMBER_REFUSED');
    expect(refusal.line).not.toMatch(/unexpected failure/);
    expect(explainFailure(new Error('boom')).code).toBe('NTLS_ERR_INTERNAL');
  });
});

describe('the admin side\'s errors', () => {
  it('AdminError, ConfigError and LogToolError are NtlsErrors with one spelling of code', () => {
    const admin = new AdminError('NTLS_ERR_ADMIN_ARGUMENT', 'x is missing', 'give x');
    const config = new ConfigError('ntls.json', 'server.port', 'too big', 'out-of-range');
    const log = new LogToolError('NTLS_ERR_LOG_BAD_LEVEL', 'no such level');
    for (const error of [admin, config, log]) {
      expect(error).toBeInstanceOf(NtlsError);
      expect(error.code).toMatch(/^NTLS_ERR_/);
    }
    expect(admin.hint).toBe('give x');
    expect(admin.toFailure()).toEqual({ code: 'NTLS_ERR_ADMIN_ARGUMENT', message: 'x is missing', hint: 'give x' });
    expect(config).toMatchObject({ code: 'NTLS_ERR_CONFIG', key: 'server.port', reason: 'out-of-range', name: 'ConfigError' });
    expect(log).toMatchObject({ exitStatus: 2, name: 'LogToolError' });
  });
});

describe('failureLine', () => {
  it('shows control characters of what was typed as \\xNN: no escape sequence reaches the terminal, the failure stays one line', () => {
    // `ntls client register --client "$(printf 'e\x1b[31m')"` printed the raw ESC back.
    const line = failureLine('ntls', 'NTLS_ERR_CLIENT_NAME', 'client name "e\x1b[31m\nx" must be 1-64 letters', 'rename it');
    expect(line).toBe('ntls: client name "e\\x1b[31m\\x0ax" must be 1-64 letters; rename it. [NTLS_ERR_CLIENT_NAME]');
  });
});

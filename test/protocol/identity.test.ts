import { describe, expect, it } from 'vitest';
import { encodeIdentity, IdentityError, scanIdentity } from '../../src/protocol/identity.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as IdentityError).code;
  }
  return 'no error';
}

describe('identity exchange', () => {
  it('round-trips and leaves the bytes after the line', () => {
    const line = encodeIdentity('client', 'app-1.example');
    expect(line.toString()).toBe('NTLS-IDENTITY/1 client app-1.example\n');
    const scan = scanIdentity(Buffer.concat([line, Buffer.from([0])]), 'client');
    expect(scan).toEqual({ done: true, identity: { version: 1, role: 'client', name: 'app-1.example' }, rest: Buffer.from([0]) });
  });

  it('waits for the rest of a partial line', () => {
    expect(scanIdentity(Buffer.from('NTLS-IDEN'), 'client')).toEqual({ done: false });
    expect(scanIdentity(Buffer.from('NTLS-IDENTITY/1 client a'), 'client')).toEqual({ done: false });
  });

  it('recognises a non-NTLS peer from its first bytes', () => {
    expect(code(() => scanIdentity(Buffer.from('GET / HTTP/1.1'), 'client'))).toBe('NTLS_ERR_NOT_NTLS');
    expect(code(() => scanIdentity(Buffer.from([0x16, 0x03, 0x01]), 'client'))).toBe('NTLS_ERR_NOT_NTLS');
  });

  it('refuses the wrong role, a bad version and an endless line', () => {
    expect(code(() => scanIdentity(Buffer.from('NTLS-IDENTITY/1 server x\n'), 'client'))).toBe('NTLS_ERR_NOT_NTLS');
    expect(code(() => scanIdentity(Buffer.from('NTLS-IDENTITY/9 client x\n'), 'client'))).toBe('NTLS_ERR_IDENTITY_VERSION');
    expect(code(() => scanIdentity(Buffer.from('NTLS-IDENTITY/1 client ' + 'x'.repeat(300)), 'client'))).toBe('NTLS_ERR_IDENTITY_TOO_LONG');
  });

  it('refuses names with spaces or control characters', () => {
    expect(() => encodeIdentity('client', 'two words')).toThrow(RangeError);
    expect(() => encodeIdentity('client', '')).toThrow(RangeError);
  });
});

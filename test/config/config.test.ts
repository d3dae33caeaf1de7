import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyOverrides, CONFIG_FILE, ConfigError, loadConfig, type ConfigProblem } from '../../src/config/load.js';
import { ConfigShape, defaultConfig } from '../../src/config/schema.js';

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'ntls-config-'));
});
afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

const write = (value: unknown) => writeFileSync(join(home, CONFIG_FILE), typeof value === 'string' ? value : JSON.stringify(value));

/** The ConfigError loading throws, for assertions on its key and reason. */
function refusal(): ConfigError {
  try {
    loadConfig(home);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('configuration was accepted');
}

function expectRefused(key: string, reason: ConfigProblem): ConfigError {
  const error = refusal();
  expect({ code: error.code, key: error.key, reason: error.reason }).toEqual({ code: 'NTLS_ERR_CONFIG', key, reason });
  // One line, naming the file and the key.
  expect(error.message).not.toContain('\n');
  expect(error.message).toContain(error.file);
  expect(error.message).toContain(key);
  return error;
}

describe('defaults', () => {
  it('a home without ntls.json runs on the defaults', () => {
    expect(loadConfig(home)).toEqual(defaultConfig());
  });

  it('an empty object is all defaults too', () => {
    write({});
    expect(loadConfig(home)).toEqual(defaultConfig());
  });

  it('has the documented defaults', () => {
    const config = defaultConfig();
    expect(config.server).toMatchObject({ bind: '0.0.0.0', port: 1792, keyType: 'ecdsa-p256', minTlsVersion: 'TLSv1.2' });
    expect(config.server.cipherList.split(':')[0]).toBe('AES256-GCM-SHA384');
    expect(config.tcpKeepalive).toEqual({ idle: 10, interval: 10, count: 2 });
    expect(config.datapath).toMatchObject({ inboundWorkers: availableParallelism(), outboundWorkers: 4 });
    expect(config.processor).toEqual({ module: null, workers: 50, commandKeepalive: 0, maxAppIdsPerClient: 256 });
    expect(config.hsm).toMatchObject({ maxSessions: 4096, operationMemoryBudget: 256 * 1024 * 1024 });
    expect(config.log).toMatchObject({ debug: false, syslog: null });
    expect(config.clients.ipCheck).toBe(true);
    expect(config.datapath).toMatchObject({ maxConnectionsPerClient: null, clientMemoryBudget: null, frameTimeout: 30 });
  });

  it('a partial file keeps the defaults of what it does not set', () => {
    write({ server: { port: 2000 }, tcpKeepalive: { count: 5 }, log: { debug: true } });
    const config = loadConfig(home);
    expect(config.server.port).toBe(2000);
    expect(config.server.bind).toBe('0.0.0.0');
    expect(config.tcpKeepalive).toEqual({ idle: 10, interval: 10, count: 5 });
    expect(config.log.debug).toBe(true);
    expect(config.datapath).toEqual(defaultConfig().datapath);
  });

  it('a syslog receiver takes defaults for what it leaves out', () => {
    write({ log: { syslog: { transport: 'tcp' } } });
    expect(loadConfig(home).log.syslog).toEqual({ transport: 'tcp', format: 'rfc3164', host: '127.0.0.1', port: 514 });
  });

  it('every setting has a description (ntls config show and docs are derived from them)', () => {
    const shape = ConfigShape.shape;
    for (const [group, schema] of Object.entries(shape)) {
      const inner = (schema as unknown as { _def: { innerType: { shape: Record<string, { description?: string }> } } })._def.innerType.shape;
      for (const [key, setting] of Object.entries(inner)) expect(setting.description, `${group}.${key}`).toBeTruthy();
    }
  });

  it('accepts a file that starts with a byte order mark', () => {
    write('\uFEFF{"server":{"port":1793}}');
    expect(loadConfig(home).server.port).toBe(1793);
  });
});

describe('refusals name the setting', () => {
  it('unknown top-level key', () => {
    write({ sever: { port: 1 } });
    expectRefused('sever', 'unknown-key');
  });

  it('unknown nested key, by its full path', () => {
    write({ server: { port: 1792, prot: 1793 } });
    expectRefused('server.prot', 'unknown-key');
  });

  it('unknown key two levels down', () => {
    write({ log: { syslog: { transport: 'udp', hots: 'x' } } });
    expectRefused('log.syslog.hots', 'unknown-key');
  });

  it('wrong type', () => {
    write({ server: { port: '1792' } });
    expectRefused('server.port', 'wrong-type');
    write({ clients: { ipCheck: 'yes' } });
    expectRefused('clients.ipCheck', 'wrong-type');
    write({ tcpKeepalive: { idle: 1.5 } });
    expectRefused('tcpKeepalive.idle', 'wrong-type');
    write({ server: 'localhost' });
    expectRefused('server', 'wrong-type');
  });

  it('port out of range', () => {
    write({ server: { port: 65536 } });
    expectRefused('server.port', 'out-of-range');
    write({ server: { port: -1 } });
    expectRefused('server.port', 'out-of-range');
    write({ log: { syslog: { port: 70000 } } });
    expectRefused('log.syslog.port', 'out-of-range');
  });

  it('keepalive values the kernel would not take', () => {
    write({ tcpKeepalive: { count: 128 } });
    expectRefused('tcpKeepalive.count', 'out-of-range');
    write({ tcpKeepalive: { interval: 0 } });
    expectRefused('tcpKeepalive.interval', 'out-of-range');
  });

  it('a value outside its set', () => {
    write({ log: { syslog: { transport: 'sctp' } } });
    expectRefused('log.syslog.transport', 'invalid-value');
    write({ server: { keyType: 'dsa' } });
    expectRefused('server.keyType', 'invalid-value');
  });

  it('invalid JSON', () => {
    write('{ "server": { "port": 1792, } }');
    expectRefused('(file)', 'invalid-json');
    write('');
    expectRefused('(file)', 'invalid-json');
  });

  it('JSON that is not an object', () => {
    write('[1, 2]');
    expectRefused('(root)', 'wrong-type');
    write('null');
    expectRefused('(root)', 'wrong-type');
  });

  it('a file that cannot be read', () => {
    mkdirSync(join(home, CONFIG_FILE));
    expectRefused('(file)', 'unreadable');
  });
});

describe('command-line overrides', () => {
  it('--port and --bind replace the file\'s values for the run', () => {
    write({ server: { port: 2000, bind: '127.0.0.1' } });
    const config = applyOverrides(loadConfig(home), { port: 0, bind: '::1' });
    expect(config.server).toMatchObject({ port: 0, bind: '::1' });
    expect(applyOverrides(loadConfig(home), {}).server).toMatchObject({ port: 2000, bind: '127.0.0.1' });
  });

  it('overrides obey the schema too', () => {
    for (const [overrides, key, reason] of [
      [{ port: 65536 }, 'server.port', 'out-of-range'],
      [{ port: 1.5 }, 'server.port', 'wrong-type'],
      [{ bind: '' }, 'server.bind', 'invalid-value'],
    ] as const) {
      let caught: unknown;
      try {
        applyOverrides(defaultConfig(), overrides);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect(caught).toMatchObject({ file: '(command line)', key, reason });
    }
  });
});

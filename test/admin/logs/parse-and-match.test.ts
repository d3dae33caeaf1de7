// The line parser's tolerance of the guide's irregular format, and the matcher's choices.
import { describe, expect, it } from 'vitest';
import { Catalogue } from '../../../src/log/catalogue.js';
import { formatMessage } from '../../../src/log/format.js';
import { parseLine, timeOf } from '../../../src/admin/logs/line.js';
import { catalogueMatcher } from '../../../src/admin/logs/matcher.js';
import { explainLine } from '../../../src/admin/logs/explain.js';

const at = new Date(2026, 10, 26, 8, 46, 55);
const origin = { host: 'host', pid: 9244 };

describe('parseLine', () => {
  it('reads the daemon\'s own line', () => {
    const raw = formatMessage(at, origin, Catalogue.startingUp, {});
    expect(parseLine(raw)).toEqual({
      timestamp: '2026 Nov 26 08:46:55', year: 2026, host: 'host', facility: 'local5', severity: 'info', process: 'NTLS', pid: 9244,
      label: 'info', code: 0, codeText: '0', shape: 'coded', text: 'Starting up NTLS........',
    });
  });

  it('takes doubled spaces, "local5  err", "info :  0xc0000002 :" and no-break spaces', () => {
    const p = parseLine('2012 Feb 29 12:05:01 myLuna  local5  err  NTLS [1234]: error :  0xc0000002 : Unable to create a new connection.')!;
    expect(p).toMatchObject({ severity: 'err', label: 'error', code: 0xc0000002, codeText: '0xc0000002', shape: 'coded', text: 'Unable to create a new connection.' });
    const nbsp = parseLine('2012 Feb 29 12:05:01 myLuna\u00a0 local5 info\u00a0 NTLS [1234]: info : 0 : luna_engine_preload: SUCCESSFULLY\u00a0 loaded')!;
    expect(nbsp.text).toBe('luna_engine_preload: SUCCESSFULLY  loaded');
  });

  it('reads a line without a year, and gives its time', () => {
    const p = parseLine('Feb 29 12:05:01 myLuna  local5 info  NTLS [1234]: info : 0 : luna_engine_preload: failed to load')!;
    expect(p.year).toBeNull();
    expect(p.timestamp).toBe('Feb 29 12:05:01');
    expect(timeOf(p, 2012)?.getMonth()).toBe(1);
  });

  it('tells the four shapes apart', () => {
    const shape = (body: string) => parseLine(`2012 Feb 29 12:05:01 h local5 err NTLS [1]: ${body}`)?.shape;
    expect(shape('error : 0xc0000002 : Unable to create a new connection.')).toBe('coded');
    expect(shape('error : 0xc0000002 Fail to initialize token interface : RC_GENERAL_ERROR')).toBe('spaced');
    expect(shape('debug : 0xc0000002     Unexpected read response in HEADER STATE')).toBe('debug');
    expect(shape('Client attempted unsupported command 0x00000041.')).toBe('bare');
  });

  it('reads ISO timestamps and lines without facility and severity', () => {
    expect(parseLine('2026-11-26T08:46:55.123+00:00 host NTLS[9244]: info : 0 : NTLS terminated')).toMatchObject({
      year: 2026, facility: null, severity: null, process: 'NTLS', pid: 9244, text: 'NTLS terminated',
    });
  });

  it('is null for what is no syslog line', () => {
    expect(parseLine('')).toBeNull();
    expect(parseLine('    at Object.<anonymous> (/x.js:1:1)')).toBeNull();
    expect(parseLine('2026 Nov 26 08:46:55 host local5 bogus NTLS [1]: info : 0 : x')).toBeNull();
  });
});

describe('Matcher', () => {
  const matcher = catalogueMatcher();
  const match = (raw: string) => matcher.match(parseLine(raw)!);

  it('finds the entry and its values', () => {
    const r = match(formatMessage(at, origin, Catalogue.clientAuthenticated, { client: 'alice', peer: '10.0.0.1/5000' }));
    expect(r.status).toBe('recognised');
    if (r.status !== 'recognised') return;
    expect(r.message.id).toBe('clientAuthenticated');
    expect(r.params).toEqual({ client: 'alice', peer: '10.0.0.1/5000' });
  });

  it('tells same-text messages apart by level and code', () => {
    const term = (sev: string, body: string) => match(`2026 Nov 26 08:46:55 h local5 ${sev}  NTLS [1]: ${body}`);
    expect(term('info', 'info : 0 : Terminating.')).toMatchObject({ status: 'recognised', message: { id: 'terminating' } });
    expect(term('crit', 'critical : 0xc0000102 : Terminating.')).toMatchObject({ status: 'recognised', message: { id: 'terminatingCritical' } });
    const peer = 'Fail to allocate command buffer : 1.2.3.4/5 : RC_MEMORY_ALLOCATION';
    expect(term('info', `info : 0xc0000001 : ${peer}`)).toMatchObject({ message: { id: 'commandBufferAllocFailedInfo' } });
    expect(term('crit', `critical : 0xc0000001 : ${peer}`)).toMatchObject({ message: { id: 'commandBufferAllocFailed' } });
  });

  it('reports the text of a message with another level or code as a mismatch', () => {
    const r = match('2026 Nov 26 08:46:55 h local5 info  NTLS [1]: info : 0 : Client request header malformed : 1.2.3.4/5 : RC_DATA_INVALID');
    expect(r.status).toBe('mismatch');
    if (r.status !== 'mismatch') return;
    expect(r.message.id).toBe('requestHeaderMalformed');
    expect(r.mismatch).toEqual({
      expected: { severity: 'crit', label: 'critical', code: '0xc0000102' },
      found: { severity: 'info', label: 'info', code: '0' },
    });
  });

  it('prefers the template with the most fixed text', () => {
    const r = match('2026 Nov 26 08:46:55 h local5 err  NTLS [1]: error : 0xc0000002 : Failed to initialize "X" module version 1.0 for data path module version 1.0 : RC_GENERAL_ERROR');
    expect(r).toMatchObject({ status: 'recognised', message: { id: 'processorInitFailedForDatapath' }, params: { module: 'X', version: '1.0', datapathVersion: '1.0' } });
  });

  it('does not let a shorter template swallow a longer message\'s text, even with a wrong code', () => {
    const r = match('2026 Nov 26 08:46:55 h local5 err  NTLS [1]: error : 0xc0000102 : Failed to initialize "X" module version 1.0 for data path module version 1.0 : RC_GENERAL_ERROR');
    expect(r).toMatchObject({ status: 'mismatch', message: { id: 'processorInitFailedForDatapath' } });
  });

  it('takes single spaces where the guide has doubled ones, and a stripped trailing space', () => {
    expect(match('2026 Nov 26 08:46:55 h local5 info  NTLS [1]: info : 0xc0000002 : Connection terminating: 1.2.3.4/5'))
      .toMatchObject({ status: 'recognised', message: { id: 'connectionTerminating' } });
    expect(match('2026 Nov 26 08:46:55 h local5 info  NTLS [1]: info : 0 : 1 = ENGINE_ctrl_cmd_string(...ID...)'))
      .toMatchObject({ status: 'recognised', message: { id: 'engineCtrlId' } });
  });

  it('holds closed value sets: an unknown state string is no match', () => {
    const line = (state: string) => match(`2026 Nov 26 08:46:55 h local5 debug  NTLS [1]: debug : 0xc0000002     Unexpected read response in ${state}`);
    expect(line('HEADER STATE')).toMatchObject({ status: 'recognised', params: { state: 'HEADER STATE' } });
    expect(line('SLEEPING STATE').status).toBe('unknown');
  });

  it('says unknown for text the guide does not have', () => {
    expect(match('2026 Nov 26 08:46:55 h local5 info  NTLS [1]: info : 0 : Something else entirely').status).toBe('unknown');
  });
});

describe('explainLine', () => {
  it('gives kind, heading, meaning, root cause and the other headings of a message', () => {
    const e = explainLine(formatMessage(at, origin, Catalogue.requestHeaderMalformed, { peer: '1.2.3.4/5' }), 7);
    expect(e).toMatchObject({
      line: 7, status: 'recognised', id: 'requestHeaderMalformed', kind: 'unexpected', section: 'datapath-unexpected',
      heading: 'Connection Instance Failures', reference: { severity: 'crit', label: 'critical', code: '0xc0000102', rc: 'RC_DATA_INVALID' },
    });
    expect(e.meaning).toMatch(/add or remove a client connection instance/);
    expect(e.alsoUnder.map((a) => a.heading)).toEqual(['Client Authentication Failures']);
  });

  it('gives the root cause the guide names', () => {
    const e = explainLine(formatMessage(at, origin, Catalogue.clientCredentialsRejected, { peer: '1.2.3.4/5' }), 1);
    expect(e.kind).toBe('expected');
    expect(e.rootCause).toMatch(/^A possible root cause is that the client’s certificate is invalid/);
  });

  it('says why a line is unknown', () => {
    expect(explainLine('garbage', 3)).toMatchObject({ status: 'unknown', id: null, reason: expect.any(String) });
  });
});

import { describe, expect, it } from 'vitest';
import { allMessages, Catalogue } from '../../src/log/catalogue.js';
import { formatLine, formatMessage, formatTimestamp } from '../../src/log/format.js';
import { formatCode, renderBody } from '../../src/log/message.js';
import { formatSyslogRecord, frameSyslogRecord, syslogPriority } from '../../src/log/syslog-sink.js';

const AT = new Date(2012, 1, 29, 12, 5, 1); // local time, as lunalogs is written
const ORIGIN = { host: 'myLuna', pid: 1234 };
const PEER = '192.168.0.100/40847';

describe('lunalogs line', () => {
  it('timestamps as "YYYY Mon DD HH:MM:SS", local time, zero padded', () => {
    expect(formatTimestamp(AT)).toBe('2012 Feb 29 12:05:01');
    expect(formatTimestamp(new Date(2026, 0, 5, 3, 4, 9))).toBe('2026 Jan 05 03:04:09');
    expect(formatTimestamp(new Date(2026, 11, 31, 23, 59, 59))).toBe('2026 Dec 31 23:59:59');
  });

  it('prints codes as the guide does', () => {
    expect(formatCode(0)).toBe('0');
    expect(formatCode(0xc0000002)).toBe('0xc0000002');
    expect(formatCode(0xc000070a)).toBe('0xc000070a');
    expect(formatCode(0x300000)).toBe('0x300000');
  });

  it('coded: "<label> : <code> : <text>"', () => {
    expect(formatMessage(AT, ORIGIN, Catalogue.connectionAccepted, { peer: PEER })).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 info  NTLS [1234]: info : 0xc0000002 : Connection accepted from: 192.168.0.100/40847');
    expect(formatMessage(AT, ORIGIN, Catalogue.listeningPortBindFailed, {})).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 crit  NTLS [1234]: critical : 0xc0000500 : NTLS listening port could not Bind : RC_SOCKET_ERROR');
    expect(formatMessage(AT, ORIGIN, Catalogue.keepaliveDisabled, { peer: PEER })).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 warn  NTLS [1234]: warning : 0 : Client command keepalive function is disabled : 192.168.0.100/40847');
  });

  it('coded with severity and label apart: the crash lines are crit with inner info', () => {
    expect(formatMessage(AT, ORIGIN, Catalogue.crashNoStackDump, {})).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 crit  NTLS [1234]: info : 0 : NTLS CRASH AND BURN and unable to dump the stack!');
  });

  it('spaced: "<label> : <code> <text>", no colon after the code', () => {
    expect(formatMessage(AT, ORIGIN, Catalogue.tokenInterfaceInitFailed, {})).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 err  NTLS [1234]: error : 0xc0000002 Fail to initialize token interface : RC_GENERAL_ERROR');
  });

  it('debug: "<label> : <code>     <text>"', () => {
    expect(formatMessage(AT, ORIGIN, Catalogue.unexpectedReadResponse, { state: 'HEADER STATE' })).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 debug  NTLS [1234]: debug : 0xc0000002     Unexpected read response in HEADER STATE');
  });

  it('bare: the text alone after "NTLS [pid]: "', () => {
    expect(formatMessage(AT, ORIGIN, Catalogue.usbTokenUndeployed, { label: 'Backup1', serial: 123456 })).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 info  NTLS [1234]: USB token: Backup1 with serial number: 123456 has been undeployed!');
    expect(formatMessage(AT, ORIGIN, Catalogue.unsupportedCommand, { command: '0x00000042' })).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 info  NTLS [1234]: Client attempted unsupported command 0x00000042.');
  });

  it('a value with control characters (a token label a client set) is written with them as \\xNN: it cannot forge a line or reach a terminal', () => {
    expect(formatMessage(AT, ORIGIN, Catalogue.usbTokenUndeployed, { label: 'x\n2012 Feb 29 12:05:01 myLuna  local5 crit  NTLS [1]: forged\x1b[2J\x9b', serial: 1 })).toBe(
      '2012 Feb 29 12:05:01 myLuna  local5 info  NTLS [1234]: USB token: x\\x0a2012 Feb 29 12:05:01 myLuna  local5 crit  NTLS [1]: forged\\x1b[2J\\x9b with serial number: 1 has been undeployed!');
  });

  it('every catalogue entry prints in one of the four shapes', () => {
    const shapes = {
      coded: /^(critical|error|warning|info|debug) : (0|0x[0-9a-f]+) : \S/,
      spaced: /^(critical|error|warning|info|debug) : (0|0x[0-9a-f]+) \S/,
      debug: /^(critical|error|warning|info|debug) : (0|0x[0-9a-f]+) {5}\S/,
      bare: /^(?!(critical|error|warning|info|debug) : )\S/,
    };
    const prefix = /^\d{4} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d myLuna {2}local5 (crit|err|warn|info|debug) {2}NTLS \[1234\]: /;
    for (const m of allMessages) {
      const line = formatMessage(AT, ORIGIN, m, m.example);
      expect(line, m.id).toMatch(prefix);
      expect(line.replace(prefix, ''), m.id).toMatch(shapes[m.shape]);
      expect(line.endsWith(renderBody(m, m.example as Record<string, string | number>))).toBe(true);
    }
  });

  it('keeps the host and pid it is given', () => {
    expect(formatLine(AT, { host: 'hsm-7', pid: 42 }, 'err', 'x')).toBe('2012 Feb 29 12:05:01 hsm-7  local5 err  NTLS [42]: x');
  });
});

describe('syslog record', () => {
  it('priority is facility local5 (21) with the line\'s severity', () => {
    expect(syslogPriority('crit')).toBe(170);
    expect(syslogPriority('err')).toBe(171);
    expect(syslogPriority('warn')).toBe(172);
    expect(syslogPriority('info')).toBe(174);
    expect(syslogPriority('debug')).toBe(175);
  });

  it('RFC 3164: <PRI>Mmm dd hh:mm:ss HOST NTLS[pid]: body', () => {
    const body = 'info : 0xc0000002 : Connection accepted from: 192.168.0.100/40847';
    expect(formatSyslogRecord('rfc3164', AT, 'myLuna', 1234, 'info', body)).toBe(`<174>Feb 29 12:05:01 myLuna NTLS[1234]: ${body}`);
    // Days below 10 are space padded, as RFC 3164 says.
    expect(formatSyslogRecord('rfc3164', new Date(2026, 2, 7, 8, 9, 10), 'h', 1, 'err', 'x')).toBe('<171>Mar  7 08:09:10 h NTLS[1]: x');
  });

  it('RFC 5424: <PRI>1 TIMESTAMP HOST NTLS PID - - body', () => {
    const at = new Date(Date.UTC(2012, 1, 29, 12, 5, 1, 250));
    expect(formatSyslogRecord('rfc5424', at, 'myLuna', 1234, 'crit', 'critical : 0xc0000500 : x')).toBe(
      '<170>1 2012-02-29T12:05:01.250Z myLuna NTLS 1234 - - critical : 0xc0000500 : x');
  });

  it('stream framing: octet counting for RFC 5424 (in bytes), a newline for RFC 3164', () => {
    expect(frameSyslogRecord('rfc5424', '<174>1 é')).toBe('9 <174>1 é');
    expect(frameSyslogRecord('rfc3164', '<174>x')).toBe('<174>x\n');
  });
});

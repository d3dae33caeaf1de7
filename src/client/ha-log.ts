// The client log's HA group lines. The guide has no line for HA groups (it covers the
// appliance's NTLS), so these are ntls-client's own, in the guide's line shape: syslog severity,
// "<label> : 0 : <text>". Each names the group and the member, and says why.
import type { Message, Section, Severity, TemplateParams } from '../log/message.js';

function def<T extends string>(id: string, severity: Severity, section: Section, template: T, example: TemplateParams<T>): Message<T> {
  const label = severity === 'info' ? 'info' : severity === 'warn' ? 'warning' : 'error';
  return { id, severity, label, code: 0, rc: null, template, shape: 'coded', section, heading: 'HA groups', example, values: {} };
}

const G = { group: 'payments', member: 'hsm2' };

export const haMessages = {
  memberJoined: def('haMemberJoined', 'info', 'client-expected', 'HA group {group}: member {member} joined (partition {partition}, slot {slot})', { ...G, partition: 'payments', slot: 0 }),
  memberLost: def('haMemberLost', 'warn', 'client-unexpected', 'HA group {group}: member {member} lost: {reason}', { ...G, reason: 'the server closed the link' }),
  memberRecovered: def('haMemberRecovered', 'info', 'client-expected', 'HA group {group}: member {member} recovered after {attempts} attempt(s)', { ...G, attempts: 1 }),
  recoveryFailed: def('haRecoveryFailed', 'warn', 'client-unexpected', 'HA group {group}: member {member} recovery attempt {attempt} failed: {reason}', { ...G, attempt: 1, reason: 'connection refused' }),
  recoveryGivenUp: def('haRecoveryGivenUp', 'err', 'client-unexpected', 'HA group {group}: member {member} given up after {attempts} recovery attempt(s): {reason}', { ...G, attempts: 5, reason: 'connection refused' }),
  memberRefused: def('haMemberRefused', 'err', 'client-unexpected', 'HA group {group}: member {member} refused: {reason}', { ...G, reason: 'it presented a certificate other than the one added for it' }),
  failover: def('haFailover', 'info', 'client-expected', 'HA group {group}: {call} failed over from {from} to {to}: {reason}', { group: 'payments', call: 'C_Sign', from: 'hsm1', to: 'hsm2', reason: 'the server closed the link' }),
  noMember: def('haNoMember', 'err', 'client-unexpected', 'HA group {group}: {call} failed, no member left: {reason}', { group: 'payments', call: 'C_Sign', reason: 'every member is lost' }),
} as const;

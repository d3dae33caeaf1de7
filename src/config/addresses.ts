// Addresses a setting names to listen on (server.bind, metrics.bind): an IP address literal or a
// host name, which must resolve to an address of this host (or the wildcard), as the start needs.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Syntax only: an IPv4/IPv6 literal or a DNS name. */
export function isAddressOrHostName(value: string): boolean {
  return isIP(value) !== 0 || HOST_NAME.test(value);
}

function isLocal(address: string): boolean {
  if (address === '0.0.0.0' || address === '::') return true;
  const mine = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.replace(/%.*$/, '')));
  return mine.includes(address.replace(/%.*$/, ''));
}

/**
 * What is wrong with listening on `value`, or null: not an address or name, a name that does
 * not resolve, or an address that is not one of this host's.
 */
export async function bindProblem(value: string): Promise<string | null> {
  if (!isAddressOrHostName(value)) return `"${value}" is neither an IP address nor a host name`;
  let addresses: string[];
  if (isIP(value)) addresses = [value];
  else {
    try {
      addresses = (await lookup(value, { all: true })).map((a) => a.address);
    } catch (error) {
      return `the host name "${value}" does not resolve (${(error as NodeJS.ErrnoException).code ?? 'lookup failed'})`;
    }
  }
  if (!addresses.some(isLocal)) return `${value} (${addresses.join(', ')}) is not an address of this host`;
  return null;
}

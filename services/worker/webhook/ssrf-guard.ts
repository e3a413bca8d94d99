/**
 * SSRF protection for webhook targets: only public unicast addresses, unless WEBHOOK_ALLOW_PRIVATE=true.
 * Checked on the address actually connected to (a custom DNS lookup in the HTTP agent), so a hostname that
 * resolves — or re-resolves — to 127.0.0.1, 10.x, 169.254.169.254 and the like is refused.
 */
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

export class BlockedTargetError extends Error {
  override name = 'BlockedTargetError';
  constructor(readonly address: string) {
    super(`webhook target ${address} is a private, loopback or reserved address; set WEBHOOK_ALLOW_PRIVATE=true to allow it`);
  }
}

export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  return ip.range() === 'unicast';
}

/** Literal IP in the URL (net.connect skips DNS lookup for those, so they are checked up front). */
export function literalAddressOf(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return ipaddr.isValid(host) ? host : undefined;
}

export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses as dns.LookupAddress[];
    const blocked = list.find((a) => !isPublicAddress(a.address));
    if (blocked) return callback(new BlockedTargetError(blocked.address), '', 0);
    if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
    const first = list[0]!;
    callback(null, first.address, first.family);
  });
};

/**
 * SSRF protection for webhook targets: only public unicast addresses, unless WEBHOOK_ALLOW_PRIVATE=true.
 * Checked on the address actually connected to (a custom DNS lookup in the HTTP agent), so a hostname that
 * resolves — or re-resolves — to 127.0.0.1, 10.x, 169.254.169.254 and the like is refused. The URL parser and
 * the address rule are shared with the API's validation: services/common/webhook-target.ts.
 */
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { BlockedTargetError, isForbiddenAddress, parseWebhookTarget } from '../../common/webhook-target';

export { BlockedTargetError };

export function isPublicAddress(address: string): boolean {
  return !isForbiddenAddress(address);
}

/** Literal IP in the URL (net.connect skips DNS lookup for those, so they are checked up front). */
export function literalAddressOf(url: URL): string | undefined {
  return parseWebhookTarget(url.href).literalAddress;
}

export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses;
    const blocked = list.find((a) => isForbiddenAddress(a.address));
    if (blocked) return callback(new BlockedTargetError(blocked.address), '', 0);
    if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
    const first = list[0]!;
    callback(null, first.address, first.family);
  });
};

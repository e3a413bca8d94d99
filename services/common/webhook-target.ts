/**
 * Webhook targets: the one URL parser and the one address rule, shared by the API (refuses bad targets with 400
 * at enqueue, services/api/routes/jobs.ts) and the worker (checks every address it actually connects to,
 * services/worker/webhook/ssrf-guard.ts). Using the same code on both sides is the point: a URL the API accepts
 * is one the worker can parse, and an address the API lets through is one the worker will not refuse for being
 * private — except a hostname that resolves to one, which only the worker can see.
 *
 * Forbidden unless WEBHOOK_ALLOW_PRIVATE=true: everything but public unicast. IPv6 forms that carry an IPv4
 * address are judged by that IPv4 address — IPv4-mapped (::ffff:0:0/96), IPv4-translated (::ffff:0:0:0/96),
 * IPv4-compatible (::/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) — so http://[::127.0.0.1]/
 * is loopback, not "unicast". Teredo, the local-use NAT64 prefix 64:ff9b:1::/48 and every other special-purpose
 * range stay forbidden.
 */
import ipaddr from 'ipaddr.js';

export class WebhookTargetError extends Error {
  override name = 'WebhookTargetError';
}

export class BlockedTargetError extends Error {
  override name = 'BlockedTargetError';
  constructor(readonly address: string) {
    super(`webhook target ${address} is a private, loopback or reserved address; set WEBHOOK_ALLOW_PRIVATE=true to allow it`);
  }
}

export interface WebhookTarget {
  url: URL;
  /** The IP address written in the URL, if the host is one (connections to it skip DNS). */
  literalAddress?: string;
}

/** Parses a webhook URL exactly as the worker's HTTP client will (WHATWG URL). Throws WebhookTargetError. */
export function parseWebhookTarget(raw: string): WebhookTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetError('is not a URL the webhook client can parse');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WebhookTargetError('must be an http or https URL');
  if (url.username || url.password) throw new WebhookTargetError('must not carry credentials (user:password@)');
  if (!url.hostname) throw new WebhookTargetError('has no host');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { url, literalAddress: ipaddr.isValid(host) ? host : undefined };
}

/** Names that are loopback by definition (RFC 6761), refused without asking DNS. */
export function isLoopbackName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/** The IPv4 address an IPv6 address carries in one of the embedding forms above, if any. */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = ip.parts; // eight 16-bit groups
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const zero = (from: number, to: number) => p.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && p[5] === 0xffff) return v4(p[6]!, p[7]!); // ::ffff:a.b.c.d (mapped)
  if (zero(0, 4) && p[4] === 0xffff && p[5] === 0) return v4(p[6]!, p[7]!); // ::ffff:0:a.b.c.d (translated)
  if (zero(0, 6) && (p[6] !== 0 || p[7]! > 1)) return v4(p[6]!, p[7]!); // ::a.b.c.d (compatible; not :: or ::1)
  if (p[0] === 0x64 && p[1] === 0xff9b && zero(2, 6)) return v4(p[6]!, p[7]!); // NAT64 well-known prefix
  if (p[0] === 0x2002) return v4(p[1]!, p[2]!); // 6to4: 2002:AABB:CCDD::/48
  return undefined;
}

/** True for every address a webhook must not reach unless private targets are allowed. */
export function isForbiddenAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return true;
  const ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv4') return ip.range() !== 'unicast';
  const v6 = ip as ipaddr.IPv6;
  if (['unspecified', 'loopback'].includes(v6.range())) return true;
  // NAT64 local-use prefix (RFC 8215): a site's own translator, where the embedding depends on its set-up.
  if (v6.parts[0] === 0x64 && v6.parts[1] === 0xff9b && v6.parts[2] === 1) return true;
  const v4 = embeddedIPv4(v6);
  if (v4) return v4.range() !== 'unicast';
  return v6.range() !== 'unicast';
}

/**
 * The API's check of a webhook URL: parseable, http(s), and — unless private targets are allowed — not a literal
 * forbidden address nor a loopback name. Returns the reason it is refused, or undefined.
 */
export function webhookTargetProblem(raw: string, allowPrivate: boolean): string | undefined {
  let target: WebhookTarget;
  try {
    target = parseWebhookTarget(raw);
  } catch (err) {
    return (err as Error).message;
  }
  if (allowPrivate) return undefined;
  if (target.literalAddress && isForbiddenAddress(target.literalAddress)) {
    return `${target.literalAddress} is a private, loopback or reserved address (WEBHOOK_ALLOW_PRIVATE=false)`;
  }
  if (isLoopbackName(target.url.hostname)) return `${target.url.hostname} is a loopback name (WEBHOOK_ALLOW_PRIVATE=false)`;
  return undefined;
}

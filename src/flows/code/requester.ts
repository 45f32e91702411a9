import { isIPv6 } from 'node:net';

/**
 * Who asks for a code, for the limits that must not let one requester use up another's (issue 12,
 * hole 7): the client IP, or its /64 for IPv6, since one host is usually given a whole /64 and
 * would otherwise have 2^64 separate budgets.
 */
export function requesterId(ip: string): string {
  if (!isIPv6(ip) || ip.startsWith('::ffff:')) return ip.replace(/^::ffff:/, '');
  const [head = '', tail = ''] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((group) => group.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Link ids for `<home>/l/`: 17 random bytes in RFC 4648 base32 (A–Z, 2–7), first 26 characters —
 * Docker's `GenerateID(26)`. 26 chars keep 128 `l/<id>:` entries under a page minus 512 bytes.
 */
import { randomBytes } from 'node:crypto';
import { LINK_ID_LENGTH } from './layout.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function newLinkId(): string {
  const n = Math.ceil((LINK_ID_LENGTH * 5) / 8); // 17
  return base32(randomBytes(n)).slice(0, LINK_ID_LENGTH);
}

const LINK_RE = /^[A-Z2-7]{26}$/;
export const isLinkId = (s: string): boolean => LINK_RE.test(s);

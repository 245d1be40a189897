import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base32, isLinkId, newLinkId } from '../../src/store/short-link.js';

test('base32() matches the RFC 4648 test vectors (without padding)', () => {
  const v: Array<[string, string]> = [['', ''], ['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI']];
  for (const [i, o] of v) assert.equal(base32(Buffer.from(i)), o, i);
  assert.equal(base32(Buffer.alloc(17, 0xff)), '7'.repeat(27) + 'Q');
});

test('newLinkId() gives 26 chars of A–Z2–7, distinct across calls', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const id = newLinkId();
    assert.match(id, /^[A-Z2-7]{26}$/);
    assert.ok(isLinkId(id));
    seen.add(id);
  }
  assert.equal(seen.size, 500);
  assert.equal(isLinkId('l'), false);
  assert.equal(isLinkId('a'.repeat(26)), false);
});

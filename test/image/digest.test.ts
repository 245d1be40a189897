/** Ids and digests of the image layer (no store, no root needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MAX_LAYER_DEPTH, layerDepthError, randomId } from '../../src/image/digest.js';

test('randomId() is 64 lowercase hex and re-rolls an id whose 12-char short form is all digits (Docker\'s GenerateRandomID)', () => {
  // 0x12 0x34 … hex-encodes to digits only for the first 12 characters.
  const numeric = Buffer.from('123456789012' + 'ab'.repeat(26), 'hex');
  const almost = Buffer.from('12345678901a' + 'cd'.repeat(26), 'hex');
  const draws = [numeric, numeric, almost];
  let calls = 0;
  const id = randomId((n) => {
    assert.equal(n, 32);
    return draws[calls++] ?? randomBytes(n);
  });
  assert.equal(calls, 3, 'two all-digit short ids were drawn again');
  assert.equal(id, almost.toString('hex'));
  for (let i = 0; i < 200; i++) {
    const r = randomId();
    assert.match(r, /^[0-9a-f]{64}$/);
    assert.doesNotMatch(r, /^[0-9]{12}/);
  }
});

test('layerDepthError(): a layer on 124 layers fits, on 125 it is "max depth exceeded"', () => {
  assert.equal(MAX_LAYER_DEPTH, 125);
  assert.equal(layerDepthError('load', 124, 'x'), null);
  const e = layerDepthError('load', 125, 'image x has 126 layers');
  assert.equal(e?.code, 'EINVAL');
  assert.equal(e?.reason, 'max-depth-exceeded');
  assert.match(e?.message ?? '', /image x has 126 layers, at most 125 layers per image: max depth exceeded$/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeHeader, TYPE_DIR, TYPE_REG, type TarHeader } from '../../src/archive/tar-writer.js';
import { readTar } from './diff-tar-read.js';

const base = (over: Partial<TarHeader>): TarHeader => ({
  name: Buffer.from('f'), typeflag: TYPE_REG, mode: 0o100644, uid: 0, gid: 0, size: 0, mtime: 1700000000,
  linkname: Buffer.alloc(0), uname: 'root', gname: 'root', devmajor: 0, devminor: 0, ...over,
});
const one = async (h: TarHeader) => (await readTar(Buffer.concat([encodeHeader(h), Buffer.alloc(1024)])))[0]!;

test('encodeHeader() writes a plain ustar block with type bits in mode and 0000000 device fields', () => {
  const b = encodeHeader(base({}));
  assert.equal(b.length, 512);
  assert.equal(b.subarray(257, 265).toString('latin1'), 'ustar\x0000');
  assert.equal(b.subarray(100, 108).toString('latin1'), '0100644\0');
  assert.equal(b.subarray(329, 337).toString('latin1'), '0000000\0');
  assert.equal(b.subarray(337, 345).toString('latin1'), '0000000\0');
  assert.equal(b.subarray(136, 148).toString('latin1'), `${(1700000000).toString(8).padStart(11, '0')}\0`);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  assert.equal(b.subarray(148, 156).toString('latin1'), `${sum.toString(8).padStart(6, '0')}\0 `);
});

test('encodeHeader() splits a long ASCII path into ustar prefix/name when it can, else uses PAX path', async () => {
  const dir204 = `${'p'.repeat(150)}/${'n'.repeat(52)}/`;
  const split = encodeHeader(base({ name: Buffer.from(dir204), typeflag: TYPE_DIR, mode: 0o40755 }));
  assert.equal(split.length, 512);
  assert.equal(split.subarray(345, 345 + 150).toString(), 'p'.repeat(150));
  assert.equal((await one(base({ name: Buffer.from(dir204), typeflag: TYPE_DIR, mode: 0o40755 }))).name, dir204);
  const dir242 = `${'q'.repeat(200)}/${'r'.repeat(40)}/`;
  const pax = encodeHeader(base({ name: Buffer.from(dir242), typeflag: TYPE_DIR, mode: 0o40755 }));
  assert.equal(pax.length, 512 * 3);
  assert.equal(pax[156], 0x78);
  assert.equal(pax.subarray(0, 100).toString('latin1').replace(/\0+$/, ''), `${'q'.repeat(200)}/${'r'.repeat(40)}/PaxHeaders.0`.slice(0, 100).replace(/\/+$/, ''));
  const e = await one(base({ name: Buffer.from(dir242), typeflag: TYPE_DIR, mode: 0o40755 }));
  assert.equal(e.name, dir242);
  assert.deepEqual(Object.keys(e.pax), ['path']);
});

test('encodeHeader() uses PAX only for what ustar cannot hold: non-ASCII names, big ids, odd times, xattrs, huge sizes', async () => {
  const uni = await one(base({ name: Buffer.from('héllo wörld ✓ 日本語.txt') }));
  assert.deepEqual(uni.pax, { path: 'héllo wörld ✓ 日本語.txt' });
  const ids = await one(base({ uid: 3000000, gid: 3000001, uname: '', gname: '' }));
  assert.deepEqual([ids.uid, ids.gid, Object.keys(ids.pax).sort()], [3000000, 3000001, ['gid', 'uid']]);
  assert.deepEqual((await one(base({ mtime: -14182940 }))).pax, { mtime: '-14182940' });
  // B29: 2^33 s is one past the 11-octal-digit ustar limit (year 2242): PAX, never clamped.
  assert.deepEqual((await one(base({ mtime: 8589934592 }))).pax, { mtime: '8589934592' });
  assert.equal(encodeHeader(base({ mtime: 8589934591 })).length, 512);
  const big = encodeHeader(base({ size: 8 * 1024 ** 3 }));
  assert.ok(big.subarray(512, 1024).toString('latin1').startsWith('19 size=8589934592\n'));
  const cap = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0]);
  const x = encodeHeader(base({ paxRecords: [['SCHILY.xattr.security.capability', cap]] }));
  const rec = Buffer.concat([Buffer.from('45 SCHILY.xattr.security.capability='), cap, Buffer.from('\n')]);
  assert.deepEqual(x.subarray(512, 512 + rec.length), rec);
  assert.equal(x.subarray(0, 100).toString('latin1').replace(/\0+$/, ''), 'PaxHeaders.0/f');
});

test('encodeHeader() PAX records count their own length across a digit boundary, sorted by key', () => {
  // " path=<v>\n" is 96 bytes for a 89-byte value: 96+2 = 98 fits; a 96-byte value gives 103 → "103".
  for (const n of [89, 95, 96, 97, 200]) {
    const name = 'é'.repeat(n / 2) + (n % 2 ? 'a' : '');
    const h = encodeHeader(base({ name: Buffer.from(name), uid: 3000000 }));
    const data = h.subarray(512, 512 + Number.parseInt(h.subarray(124, 136).toString('latin1'), 8)).toString('utf8');
    const recs = data.split('\n').filter((r) => r !== '');
    assert.deepEqual(recs.map((r) => r.split(' ')[1]!.split('=')[0]), ['path', 'uid']);
    for (const r of recs) assert.equal(Buffer.byteLength(`${r}\n`), Number(r.split(' ')[0]));
  }
});

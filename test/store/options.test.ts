import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDriverOptions, parseLayerStorageOpt, ramInBytes } from '../../src/store/options.js';
import { OverlayError } from '../../src/errors.js';

const bad = (s: string, text: string) =>
  assert.throws(() => ramInBytes(s), (e: unknown) => e instanceof OverlayError && e.message.endsWith(text), s);

test('ramInBytes() follows go-units RAMInBytes (binary units, optional b/ib)', () => {
  const cases: Array<[string, number]> = [
    ['32', 32], ['32b', 32], ['32B', 32], ['32k', 32 * 1024], ['32K', 32 * 1024], ['32kb', 32 * 1024], ['32Kib', 32 * 1024],
    ['32KIB', 32 * 1024], ['32Mb', 32 * 1024 ** 2], ['32Gb', 32 * 1024 ** 3], ['32GB', 32 * 1024 ** 3], ['32Tb', 32 * 1024 ** 4],
    ['32Pb', 32 * 1024 ** 5], ['0.3Mb', Math.trunc(0.3 * 1024 ** 2)], ['-0', 0], ['32.3', 32], ['10 G', 10 * 1024 ** 3], ['1.5k', 1536],
  ];
  for (const [s, n] of cases) assert.equal(ramInBytes(s), n, s);
  bad('', "invalid size: ''");
  bad('hello', "invalid size: 'hello'");
  bad('-32', "invalid size: '-32'");
  bad('32bm', "invalid suffix: 'bm'");
  bad('32MBB', "invalid suffix: 'mbb'");
  bad('32kq', "invalid suffix: 'kq'");
  bad('32x', "invalid suffix: 'x'");
  bad('32mibx', "invalid suffix: 'mibx'");
  bad('1.2.3', 'strconv.ParseFloat: parsing "1.2.3": invalid syntax');
});

test('parseDriverOptions(): overlay2.size only, keys case-insensitive and trimmed', () => {
  assert.deepEqual(parseDriverOptions([' Overlay2.Size = 1G ']), { quotaSize: 1024 ** 3 });
  assert.deepEqual(parseDriverOptions([]), { quotaSize: 0 });
  assert.throws(() => parseDriverOptions(['overlay2.override_kernel_check=true']), /overlay2: unknown option overlay2.override_kernel_check$/);
  assert.throws(() => parseDriverOptions(['size']), /unable to parse storage-opt key\/value: size$/);
});

test('parseLayerStorageOpt(): size, else "Unknown option"', () => {
  assert.equal(parseLayerStorageOpt({ SIZE: '1k' }), 1024);
  assert.equal(parseLayerStorageOpt(undefined), 0);
  assert.throws(() => parseLayerStorageOpt({ inodes: '5' }), /Unknown option inodes$/);
});

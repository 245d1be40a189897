/**
 * `overlay2 fs setfattr/getfattr` take and print values in attr's encodings, so binary values
 * (capabilities, ACLs) round-trip as bytes. attr's own setfattr(1)/getfattr(1) on a kernel mount
 * of the same container are the reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { decodeXattrValue, encodeXattrValue } from '../../src/cli/xattr-value.js';
import { requiresCommand, requiresOverlay, tempDir } from '../helpers/requires.js';
import { EXAMPLE, cli, ok } from '../helpers/cli.js';

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${String(r.status)}): ${r.stderr}`);
  return r.stdout;
}
const ov = (root: string, ...args: string[]): string => ok(root, args);

test('xattr values: every encoding goes back to the same bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(undefined, 'text', 'hex', 'base64'), (bytes, enc) => {
      const v = Buffer.from(bytes);
      const printed = encodeXattrValue(v, enc as 'text' | 'hex' | 'base64' | undefined);
      assert.deepEqual(decodeXattrValue(printed), v, printed);
    }),
    { seed: 42, numRuns: 2000 },
  );
  assert.deepEqual(decodeXattrValue('0xff00FE'), Buffer.from([0xff, 0x00, 0xfe]));
  assert.deepEqual(decodeXattrValue('0s/4D+'), Buffer.from([0xff, 0x80, 0xfe]));
  assert.deepEqual(decodeXattrValue('"a\\042b\\\\c\\000"'), Buffer.from('a"b\\c\0', 'latin1'));
  assert.deepEqual(decodeXattrValue('plain text'), Buffer.from('plain text'));
  assert.throws(() => decodeXattrValue('0xabc'), /bad hex value.*'0xabc'/);
  assert.throws(() => decodeXattrValue('0s!!'), /bad base64/);
});

test('fs setfattr/getfattr: binary values agree with attr\'s tools on a kernel mount', (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'getfattr') || !requiresCommand(t, 'setfattr')) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  ov(root, 'load', EXAMPLE);
  ov(root, 'create', '--name', 'xa', 'example:1');
  ov(root, 'fs', 'xa', 'put', '/f');
  // Set through the engine in every input form.
  const set: Array<[string, string, string]> = [
    ['user.hex', '0xff00fe', 'ff00fe'],
    ['user.b64', '0s/4D+', 'ff80fe'],
    ['user.quoted', '"a\\012b"', '610a62'],
    ['user.text', 'hello', '68656c6c6f'],
  ];
  for (const [name, value] of set) ov(root, 'fs', 'xa', 'setfattr', '-n', name, '-v', value, '/f');
  // Values attr's default encoding prints the same way ours does (no trailing NUL, which getfattr hides).
  const defaults: Array<[string, string]> = [
    ['user.bin', '0x0102030405'], ['user.txt', '0x61626364656667680a'], ['user.q', '0x61225c62'], ['user.e', '0x'],
  ];
  for (const [name, value] of defaults) ov(root, 'fs', 'xa', 'setfattr', '-n', name, '-v', value, '/f');

  const merged = ov(root, 'mount', 'xa').trim();
  try {
    const f = join(merged, 'f');
    for (const [name, , hex] of set) {
      assert.equal(run('getfattr', ['--absolute-names', '-e', 'hex', '-n', name, f]).split('\n')[1], `${name}=0x${hex}`);
    }
    const attrDefault = run('getfattr', ['--absolute-names', '-d', '-m', '^user\\.(bin|txt|q|e)$', f]).split('\n').filter((l) => l.startsWith('user.'));
    ov(root, 'umount', 'xa');
    const ours = ov(root, 'fs', 'xa', 'getfattr', '/f').split('\n').filter((l) => /^user\.(bin|txt|q|e)=/.test(l));
    assert.deepEqual(ours.sort(), attrDefault.sort());
    // --json: the exact bytes, and the text only where they are UTF-8.
    const j = JSON.parse(ov(root, '--json', 'fs', 'xa', 'getfattr', '-n', 'user.hex', '/f')) as Record<string, { base64: string; text?: string }>;
    assert.deepEqual(j, { 'user.hex': { base64: Buffer.from('ff00fe', 'hex').toString('base64') } });
    assert.equal(ov(root, 'fs', 'xa', 'getfattr', '-e', 'hex', '-n', 'user.text', '/f').trim(), 'user.text=0x68656c6c6f');
    // The other way: attr's setfattr through the kernel mount, read back by ours.
    const merged2 = ov(root, 'mount', 'xa').trim();
    run('setfattr', ['-n', 'user.k', '-v', '0x00ff61', join(merged2, 'f')]);
    ov(root, 'umount', 'xa');
    assert.equal(ov(root, 'fs', 'xa', 'getfattr', '-n', 'user.k', '/f').trim(), `user.k=0s${Buffer.from('00ff61', 'hex').toString('base64')}`);
  } finally {
    cli(root, ['umount', 'xa']);
  }
  const bad = cli(root, ['fs', 'xa', 'setfattr', '-n', 'user.z', '-v', '0xz1', '/f']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /bad hex value.*'0xz1'/);
  for (const args of [[], ['-n', 'user.a', '-x', 'user.b']]) {
    const r = cli(root, ['fs', 'xa', 'setfattr', ...args, '/f']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /give -n NAME \[-v VALUE\] to set, or -x NAME to remove/);
  }
});

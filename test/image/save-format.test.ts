import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { realImageArchive, realImageDir } from '../helpers/realimages.js';
import { requiresCommand, tempDir } from '../helpers/requires.js';
import { writeDockerSave } from '../../src/image/save.js';
import { chainIds, sha256Digest } from '../../src/image/digest.js';
import { parseTagRef } from '../../src/image/reference.js';
import { encodeHeader } from '../../src/image/tar-header.js';

/**
 * The outer docker-save format on its own (no driver): feed the real archive's config and layer
 * tars to writeDockerSave and compare the result with the archive Docker wrote, byte for byte.
 */
for (const name of ['realbase', 'edge'] as const) {
  test(`writeDockerSave() reproduces Docker's ${name}.tar byte for byte`, async (t) => {
    if (!requiresCommand(t, 'zstd')) return;
    const dir = realImageDir(name);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    const item = manifest[0];
    assert.ok(item);
    const configBytes = readFileSync(join(dir, item.Config));
    const config = JSON.parse(configBytes.toString()) as { rootfs: { diff_ids: string[] } };
    const chains = chainIds(config.rootfs.diff_ids);
    const byChain = new Map(chains.map((c, i) => [c, join(dir, item.Layers[i] as string)]));
    const out = join(tempDir(t), 'out.tar');
    const refs = item.RepoTags.map((r) => parseTagRef(r)).filter((r) => r !== null);
    await writeDockerSave(out, [{ id: sha256Digest(configBytes), configBytes, refs, parent: null }], async (chain) => byChain.get(chain) as string);
    const r = execFileSync('sh', ['-c', `cmp "$1" "$2" && echo same`, 'sh', out, realImageArchive(name)]).toString();
    assert.equal(r.trim(), 'same');
  });
}

test('encodeHeader() writes Go archive/tar USTAR headers (checksum, octal fields, type bits)', () => {
  const h = encodeHeader({ name: 'abc/', type: 'dir', mode: 0o755, size: 0, mtime: 1_700_000_000 });
  assert.equal(h.length, 512);
  assert.equal(h.subarray(100, 108).toString('latin1'), '0040755\0');
  assert.equal(h.subarray(136, 148).toString('latin1'), `${(1_700_000_000).toString(8)}\0`);
  assert.equal(h.subarray(156, 157).toString(), '5');
  assert.equal(h.subarray(257, 265).toString('latin1'), 'ustar\x0000');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  assert.equal(h.subarray(148, 156).toString('latin1'), `${sum.toString(8).padStart(6, '0')}\0 `);
});

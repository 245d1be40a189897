import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync, truncateSync, statSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { kernelOverlayWorks, requiresCommand, requiresOverlay } from '../helpers/requires.js';
import { tarOf, type TarEntrySpec } from '../helpers/tar-builder.js';
import { gzipSync } from 'node:zlib';
import { ImageStore, loadImages, saveImages, removeImage, createContainer, containerEngine, removeContainer } from '../../src/image/index.js';
import { OverlayError } from '../../src/errors.js';
import { dockerSaveArchive, ociLayout, threeLayers, layerTar, treeSnapshot, sha, imageConfig, type LayerBlob } from './fixtures.js';

/** One data root per describe block; small images built in code (fast). */
function freshRoot(): string {
  return mkdtempSync(join(tmpdir(), 'ovl2-image-'));
}
function cleanup(dir: string): void {
  spawnSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  rmSync(dir, { recursive: true, force: true });
}

async function rejectsUnchanged(root: string, fn: () => Promise<unknown>, check: (e: OverlayError) => void): Promise<void> {
  const before = treeSnapshot(root);
  await assert.rejects(fn(), (e: unknown) => {
    assert.ok(e instanceof OverlayError, `expected OverlayError, got ${String(e)}`);
    check(e);
    return true;
  });
  assert.deepEqual(treeSnapshot(root), before, 'the data root changed after a failed operation');
}

describe('load/save with small images', { skip: !kernelOverlayWorks() && process.env['CI'] !== 'true' ? 'needs root and a kernel overlay mount' : false }, () => {
  let work: string;
  let store: ImageStore;
  let small: { archive: string; id: string; diffIds: string[] };
  before(async () => {
    work = freshRoot();
    small = await dockerSaveArchive(join(work, 'in'), await threeLayers(), 'small:1');
    store = await ImageStore.open(join(work, 'root'));
  });
  after(() => cleanup(work));

  test('load() of a docker-save archive stores layers by chainID, the exact config and the tag', async (t) => {
    if (!requiresOverlay(t)) return;
    const r = await loadImages(store, small.archive);
    assert.deepEqual(r.images, [{ id: small.id, tags: ['small:1'] }]);
    assert.equal(r.layersCreated.length, 3);
    assert.deepEqual(r.messages, ['Loaded image: small:1']);
    const layers = await store.layers();
    assert.equal(layers.length, 3);
    for (const l of layers) {
      const dir = store.paths.layerDir(l.chainId.slice(7));
      assert.ok(existsSync(join(dir, 'cache-id')) && existsSync(join(dir, 'diff')) && existsSync(join(dir, 'size')));
      assert.ok(existsSync(store.diffDir(l.cacheId)), `driver layer ${l.cacheId} exists`);
    }
    const base = layers.find((l) => l.parent === null);
    assert.equal(base?.diffId, small.diffIds[0]);
    assert.equal(sha(readFileSync(store.paths.imageConfig(small.id.slice(7)))), small.id);
    const repos = JSON.parse(readFileSync(store.paths.repositoriesFile, 'utf8')) as unknown;
    assert.deepEqual(repos, { Repositories: { small: { 'small:1': small.id } } });
  });

  test('load() of the same archive twice stores each layer once and changes nothing', async (t) => {
    if (!requiresOverlay(t)) return;
    const before = treeSnapshot(store.root);
    const r = await loadImages(store, small.archive);
    assert.deepEqual(r.layersCreated, []);
    assert.equal(r.layersReused.length, 3);
    assert.deepEqual(treeSnapshot(store.root), before);
  });

  test('save() of a loaded image is byte-identical to the input archive', async (t) => {
    if (!requiresOverlay(t)) return;
    const out = join(work, 'saved.tar');
    await saveImages(store, ['small:1'], out);
    assert.ok(readFileSync(out).equals(readFileSync(small.archive)), 'saved archive differs from the loaded one');
  });

  test('load() of a truncated archive fails with EINVAL and leaves the store unchanged', async (t) => {
    if (!requiresOverlay(t)) return;
    const cut = join(work, 'truncated.tar');
    writeFileSync(cut, readFileSync(small.archive));
    truncateSync(cut, Math.floor(statSync(cut).size / 2) + 100);
    await rejectsUnchanged(store.root, () => loadImages(store, cut), (e) => {
      assert.equal(e.code, 'EINVAL');
      assert.equal(e.reason, 'archive-truncated');
    });
  });

  test('load() with a flipped byte in a layer fails naming the layer and both digests; store unchanged', async (t) => {
    if (!requiresOverlay(t)) return;
    const dir = join(work, 'flip');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('tar', ['-xf', small.archive, '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
    const layer = join(dir, manifest[0]?.Layers[0] as string);
    const bytes = readFileSync(layer);
    const at = bytes.indexOf('alpha');
    bytes[at] = 'A'.charCodeAt(0);
    writeFileSync(layer, bytes);
    const bad = join(work, 'flipped.tar');
    execFileSync('tar', ['-cf', bad, '-C', dir, '.']);
    await rejectsUnchanged(store.root, () => loadImages(store, bad), (e) => {
      assert.equal(e.code, 'EINVAL');
      assert.equal(e.reason, 'diffid-mismatch');
      assert.match(e.message, new RegExp(`${small.diffIds[0]}`));
      assert.match(e.message, /layer 0 .*layer\.tar/);
    });
  });

  test('load() with a tampered config fails with digest-mismatch; store unchanged', async (t) => {
    if (!requiresOverlay(t)) return;
    const dir = join(work, 'cfg');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('tar', ['-xf', small.archive, '-C', dir]);
    const cfgFile = join(dir, `${small.id.slice(7)}.json`);
    writeFileSync(cfgFile, readFileSync(cfgFile, 'utf8').replace('"amd64"', '"arm64"'));
    const bad = join(work, 'badcfg.tar');
    execFileSync('tar', ['-cf', bad, '-C', dir, '.']);
    await rejectsUnchanged(store.root, () => loadImages(store, bad), (e) => {
      assert.equal(e.reason, 'digest-mismatch');
      assert.match(e.message, new RegExp(small.id));
    });
  });

  test('a compressed layer with a wrong diffID is caught after applying and everything is rolled back', async (t) => {
    if (!requiresOverlay(t)) return;
    const layers = [await layerTar([{ name: 'x/', type: 'directory' }, { name: 'x/one', content: '1' }]), await layerTar([{ name: 'x/two', content: '2' }])];
    const dir = join(work, 'oci-bad');
    ociLayout(dir, layers, '1', { gzip: true, badDiffId: 1 });
    await rejectsUnchanged(store.root, () => loadImages(store, dir, { repository: 'ocibad' }), (e) => {
      assert.equal(e.reason, 'diffid-mismatch');
      assert.match(e.message, /layer 1/);
    });
  });

  test('a damaged compressed layer is refused even when its chain is already stored; store unchanged', async (t) => {
    if (!requiresOverlay(t)) return;
    // The same diffIDs as small:1 (stored by the first test), each layer.tar gzip-compressed: the
    // first is truncated, the second has one flipped byte inside the deflate data.
    const damage = (l: Buffer, i: number): Buffer => {
      const z = gzipSync(l);
      if (i === 0) return z.subarray(0, z.length - 20);
      const k = Math.floor(z.length / 2);
      if (i === 1) z.writeUInt8(z.readUInt8(k) ^ 0x55, k);
      return z;
    };
    const bad = await dockerSaveArchive(join(work, 'gz-damaged'), await threeLayers(), 'damaged:1', undefined, damage);
    assert.deepEqual(bad.diffIds, small.diffIds);
    await rejectsUnchanged(store.root, () => loadImages(store, bad.archive), (e) => {
      assert.ok(e.reason === 'layer-decompress-failed' || e.reason === 'diffid-mismatch', `${e.reason}: ${e.message}`);
      assert.match(e.message, /layer\.tar/);
    });
    // Undamaged gzip blobs of the stored chains load, reusing every layer.
    const good = await dockerSaveArchive(join(work, 'gz-good'), await threeLayers(), 'gz:1', undefined, (l) => gzipSync(l));
    const r = await loadImages(store, good.archive);
    assert.deepEqual([r.layersCreated.length, r.layersReused.length], [0, 3]);
    await removeImage(store, 'gz:1');
  });

  test('unknown image refs fail with ENOENT "No such image" and change nothing', async (t) => {
    if (!requiresOverlay(t)) return;
    const check = (e: OverlayError): void => {
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.reason, 'image-not-found');
      assert.match(e.message, /No such image: nope:1/);
    };
    await rejectsUnchanged(store.root, () => saveImages(store, ['nope:1'], join(work, 'nope.tar')), check);
    await rejectsUnchanged(store.root, () => removeImage(store, 'nope:1'), check);
    await rejectsUnchanged(store.root, () => createContainer(store, 'c1', 'nope:1'), check);
    assert.equal(existsSync(join(work, 'nope.tar')), false);
  });

  test('load() of an OCI layout (dir and tar, gzip layers) verifies blobs and tags repository:ref.name', async (t) => {
    if (!requiresOverlay(t)) return;
    const layers = await threeLayers();
    const dir = join(work, 'oci');
    const { id } = ociLayout(dir, layers, '7', { gzip: true });
    const r = await loadImages(store, dir, { repository: 'fromoci' });
    assert.deepEqual(r.images, [{ id, tags: ['fromoci:7'] }]);
    // Same layers as small:1 → the same chainIDs are reused, not stored again.
    assert.equal(r.layersCreated.length, 0);
    const ociTar = join(work, 'oci.tar');
    execFileSync('tar', ['-cf', ociTar, '-C', dir, '.']);
    const r2 = await loadImages(store, ociTar);
    assert.deepEqual(r2.images, [{ id, tags: [] }]);
    assert.deepEqual(r2.messages, [`Loaded image ID: ${id}`]);
  });

  test('B22: an OCI image of gzip, zstd, zstd behind a skippable frame, plain and Docker-zstd layers loads by the magic bytes', async (t) => {
    if (!requiresOverlay(t) || !requiresCommand(t, 'zstd')) return;
    const zstd = (b: Buffer): Buffer => execFileSync('zstd', ['-q', '-c'], { input: b });
    const skippable = Buffer.alloc(8 + 4);
    skippable.writeUInt32LE(0x184d2a5e, 0);
    skippable.writeUInt32LE(4, 4);
    const blobs: LayerBlob[] = [];
    const layers = await Promise.all([0, 1, 2, 3, 4].map((i) => layerTar([{ name: `b22-${i}`, content: `layer ${i}\n`.repeat(50) }])));
    const dir = join(work, 'oci-b22');
    const { id } = ociLayout(dir, layers, '1', {
      blob: (l, i) => {
        const b = [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', blob: gzipSync(l) },
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', blob: zstd(l) },
          // The media type says gzip; the bytes (a skippable frame, then zstd) decide.
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', blob: Buffer.concat([skippable, zstd(l)]) },
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', blob: l },
          { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.zstd', blob: zstd(l) },
        ][i] as LayerBlob;
        blobs.push(b);
        return b;
      },
    });
    const r = await loadImages(store, dir, { repository: 'b22' });
    assert.deepEqual(r.images, [{ id, tags: ['b22:1'] }]);
    assert.equal(r.layersCreated.length, 5);
    const byDiff = new Map((await store.layers()).map((l) => [l.diffId, l]));
    for (const l of layers) assert.ok(byDiff.has(sha(l)), `a layer with diffID ${sha(l)} (the sha256 of the decompressed tar)`);
    await createContainer(store, 'b22c', 'b22:1');
    const fs = await containerEngine(store, 'b22c', { readonly: true });
    for (const i of [0, 1, 2, 3, 4]) assert.equal(await fs.readFile(`/b22-${i}`, 'utf8'), `layer ${i}\n`.repeat(50), `layer ${i} (${blobs[i]?.mediaType})`);
    await removeContainer(store, 'b22c');
  });

  test('an OCI blob whose bytes do not match its digest is refused; store unchanged', async (t) => {
    if (!requiresOverlay(t)) return;
    const dir = join(work, 'oci-flip');
    ociLayout(dir, [await layerTar([{ name: 'f', content: 'content' }])], '1');
    const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', (idx.manifests[0]?.digest ?? '').slice(7)), 'utf8')) as { layers: Array<{ digest: string }> };
    const blob = join(dir, 'blobs', 'sha256', (manifest.layers[0]?.digest ?? '').slice(7));
    const b = readFileSync(blob);
    b[b.indexOf('content')] = 'C'.charCodeAt(0);
    writeFileSync(blob, b);
    await rejectsUnchanged(store.root, () => loadImages(store, dir, { repository: 'x' }), (e) => {
      assert.equal(e.reason, 'digest-mismatch');
      assert.match(e.message, new RegExp(manifest.layers[0]?.digest ?? 'x'));
    });
  });

  test('rmi() removes only the layers no other image uses', async (t) => {
    if (!requiresOverlay(t)) return;
    const [l0, l1] = await threeLayers();
    const other = await dockerSaveArchive(join(work, 'other'), [l0 as Buffer, l1 as Buffer, await layerTar([{ name: 'only-here', content: 'z' }])], 'other:1');
    const r = await loadImages(store, other.archive);
    assert.equal(r.layersCreated.length, 1);
    const before = (await store.layers()).length;
    const res = await removeImage(store, 'other:1');
    assert.deepEqual(res.map((x) => Object.keys(x)[0]), ['Untagged', 'Deleted', 'Deleted']);
    assert.equal((await store.layers()).length, before - 1);
    assert.deepEqual((await store.images()).map((i) => i.id).includes(other.id), false);
  });

  test('load() of a newer OCI-shaped docker save (manifest.json + blobs/sha256) verifies blob names', async (t) => {
    if (!requiresOverlay(t)) return;
    const layers = [await layerTar([{ name: 'n/', type: 'directory' }, { name: 'n/f', content: 'oci-shaped' }])];
    const dir = join(work, 'ocishaped');
    ociLayout(dir, layers, 'ignored');
    const cfg = imageConfig(layers.map(sha));
    const cfgHex = sha(cfg).slice(7);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${cfgHex}`, RepoTags: ['shaped:1'], Layers: [`blobs/sha256/${sha(layers[0] as Buffer).slice(7)}`] }]));
    const tarFile = join(work, 'ocishaped.tar');
    execFileSync('tar', ['-cf', tarFile, '-C', dir, '.']);
    const r = await loadImages(store, tarFile);
    assert.deepEqual(r.images, [{ id: `sha256:${cfgHex}`, tags: ['shaped:1'] }]);
    // a layer blob whose bytes do not match its name
    const blob = join(dir, 'blobs', 'sha256', sha(layers[0] as Buffer).slice(7));
    const b = readFileSync(blob);
    b[b.indexOf('oci-shaped')] = 'O'.charCodeAt(0);
    writeFileSync(blob, b);
    await rejectsUnchanged(store.root, () => loadImages(store, dir), (e) => assert.equal(e.reason, 'digest-mismatch'));
  });

  test('info() counts images, layers and containers and carries the driver status', async (t) => {
    if (!requiresOverlay(t)) return;
    const info = await store.info();
    assert.equal(info.images, (await store.images()).length);
    assert.equal(info.layers, (await store.layers()).length);
    assert.equal(info.containers, 0);
    assert.ok(info.images >= 2 && info.layers >= 3);
    assert.equal(info.dataRoot, store.root);
    assert.ok(info.driverStatus.some(([k]) => k === 'Backing Filesystem'), JSON.stringify(info.driverStatus));
  });

  test('a repeated diffID is saved as a symlinked layer.tar (as Docker does) and loads back', async (t) => {
    if (!requiresOverlay(t)) return;
    const a = await layerTar([{ name: 'same', content: 'same layer twice' }]);
    const b = await layerTar([{ name: 'between', content: 'b' }]);
    const rep = await dockerSaveArchive(join(work, 'rep'), [a, b, a], 'repeat:1');
    const members = execFileSync('tar', ['-tvf', rep.archive]).toString();
    assert.match(members, /layer\.tar -> \.\.\/[0-9a-f]{64}\/layer\.tar/);
    const r = await loadImages(store, rep.archive);
    assert.equal(r.layersCreated.length, 3);
    const out = join(work, 'rep-saved.tar');
    await saveImages(store, ['repeat:1'], out);
    assert.ok(readFileSync(out).equals(readFileSync(rep.archive)));
  });

  test('cleanupOrphans() removes driver layers no record references, scratch and staging leftovers', async (t) => {
    if (!requiresOverlay(t)) return;
    const before = treeSnapshot(store.root);
    const orphan = 'ab'.repeat(32);
    await store.driver.create(orphan, null);
    mkdirSync(join(store.paths.tmpDir, 'load-leftover'));
    mkdirSync(join(store.paths.layerDb, `.staging-${'cd'.repeat(32)}-x`));
    const r = await store.cleanupOrphans();
    assert.deepEqual(r, { scratch: ['load-leftover'], staging: [`.staging-${'cd'.repeat(32)}-x`], chains: [], layers: [orphan], inUse: [] });
    assert.deepEqual(treeSnapshot(store.root), before);
  });

  test('a manifest naming a layer outside the input directory is refused; store unchanged', async (t) => {
    if (!requiresOverlay(t)) return;
    const base = join(work, 'escape');
    const dir = join(base, 'image');
    mkdirSync(join(base, 'outside'), { recursive: true });
    const layer = await layerTar([{ name: 'pwned', content: 'x' }]);
    writeFileSync(join(base, 'outside', 'layer.tar'), layer);
    mkdirSync(dir);
    const cfg = imageConfig([sha(layer)]);
    writeFileSync(join(dir, `${sha(cfg).slice(7)}.json`), cfg);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, RepoTags: ['esc:1'], Layers: ['../outside/layer.tar'] }]));
    await rejectsUnchanged(store.root, () => loadImages(store, dir), (e) => assert.equal(e.reason, 'archive-member-missing'));
    symlinkSync('../outside', join(dir, 'link'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, RepoTags: ['esc:1'], Layers: ['link/layer.tar'] }]));
    await rejectsUnchanged(store.root, () => loadImages(store, dir), (e) => assert.equal(e.reason, 'archive-member-escapes'));
  });
  test('B16: duplicate entries — the last wins, and the layer loads and saves with its exact DiffID bytes', async (t) => {
    if (!requiresOverlay(t)) return;
    const layer = tarOf([
      { name: 'etc/', mode: 0o755, mtime: 1000 },
      { name: 'etc/conf', body: 'first' },
      { name: 'etc/conf', body: 'second!' }, // the last entry wins
      { name: 'etc/', mode: 0o700, mtime: 2000 }, // a repeated dir: its last attributes win
      { name: 'x', body: 'a file' },
      { name: 'x/', mode: 0o755 }, // a dir replaces the file
      { name: 'x/y', body: 'y' },
      { name: 'z/' },
      { name: 'z/inner', body: 'i' },
      { name: 'z', body: 'now a file' }, // a file replaces the dir and its children
      { name: 'l', type: 'symlink', linkname: 'a' },
      { name: 'l', type: 'symlink', linkname: 'b' },
      { name: 'h', type: 'link', linkname: 'etc/conf' },
      { name: 'h', body: 'h itself' },
    ]);
    const img = await dockerSaveArchive(join(work, 'b16'), [layer], 'b16:1');
    assert.deepEqual(img.diffIds, [sha(layer)]);
    const r = await loadImages(store, img.archive);
    assert.equal(r.layersCreated.length, 1);
    const rec = (await store.layers()).find((l) => l.diffId === sha(layer));
    assert.ok(rec !== undefined);
    const diff = store.diffDir(rec.cacheId);
    assert.equal(readFileSync(join(diff, 'etc/conf'), 'utf8'), 'second!');
    const etc = statSync(join(diff, 'etc'));
    assert.deepEqual([etc.mode & 0o7777, etc.mtimeMs], [0o700, 2000_000]);
    assert.equal(readFileSync(join(diff, 'x/y'), 'utf8'), 'y');
    assert.equal(readFileSync(join(diff, 'z'), 'utf8'), 'now a file');
    assert.equal(readlinkSync(join(diff, 'l')), 'b');
    assert.equal(readFileSync(join(diff, 'h'), 'utf8'), 'h itself');
    assert.equal(statSync(join(diff, 'etc/conf')).nlink, 1, 'the replaced link left its target alone');
    // Reproducible: the saved archive (and its layer.tar) are the loaded bytes, in this store and a fresh one.
    const out = join(work, 'b16-saved.tar');
    await saveImages(store, ['b16:1'], out);
    assert.ok(readFileSync(out).equals(readFileSync(img.archive)), 'saved archive differs');
    const other = await ImageStore.open(join(work, 'b16-root'));
    await loadImages(other, out);
    const out2 = join(work, 'b16-saved2.tar');
    await saveImages(other, ['b16:1'], out2);
    assert.ok(readFileSync(out2).equals(readFileSync(img.archive)), 'a second store saves the same bytes');
    assert.deepEqual((await other.layers()).map((l) => [l.chainId, l.diffId]), [[rec.chainId, rec.diffId]]);
  });

  test('B21: save reproduces record padding and trailing bytes exactly; a tampered diff/ is detected, not saved', async (t) => {
    if (!requiresOverlay(t)) return;
    const files: TarEntrySpec[] = [{ name: 'b21/', mode: 0o755 }, { name: 'b21/data', body: 'payload\n'.repeat(100) }, { name: 'b21/small', body: 'abc' }];
    const padded = tarOf(files, { recordSize: 10240 }); // GNU tar's default blocking
    const trailing = tarOf([{ name: 'b21/other', body: 'other' }], { trailing: Buffer.from('\0\0not a tar entry, but part of the DiffID\n') });
    const noEnd = Buffer.concat([tarOf([{ name: 'b21/last', body: 'last' }], { end: false }), Buffer.alloc(512)]); // one end block only
    assert.equal(padded.length, 10240);
    const img = await dockerSaveArchive(join(work, 'b21'), [padded, trailing, noEnd], 'b21:1');
    await loadImages(store, img.archive);
    const out = join(work, 'b21-saved.tar');
    await saveImages(store, ['b21:1'], out);
    assert.ok(readFileSync(out).equals(readFileSync(img.archive)), 'saved archive differs');
    // Every layer.tar in the saved archive hashes to its DiffID.
    const x = join(work, 'b21-x');
    mkdirSync(x);
    execFileSync('tar', ['-xf', out, '-C', x]);
    const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
    assert.deepEqual(manifest[0]!.Layers.map((l) => sha(readFileSync(join(x, l)))), img.diffIds);
    // Tamper with the stored diff dir: same size, other bytes; then a removed file; then a grown one.
    const rec = (await store.layers()).find((l) => l.diffId === sha(padded))!;
    const data = join(store.diffDir(rec.cacheId), 'b21/data');
    const original = readFileSync(data);
    const tampered = join(work, 'b21-tampered.tar');
    const attempts: Array<[() => void, string]> = [
      [() => writeFileSync(data, Buffer.from(original).fill('X', 0, 7)), 'layer-digest-verification-failed'],
      [() => rmSync(data), 'tar-split-content-missing'],
      [() => writeFileSync(data, Buffer.concat([original, Buffer.from('+')])), 'tar-split-content-mismatch'],
    ];
    try {
      for (const [tamper, reason] of attempts) {
        tamper();
        await assert.rejects(saveImages(store, ['b21:1'], tampered), (e: unknown) => {
          assert.ok(e instanceof OverlayError, String(e));
          assert.equal(e.reason, reason, e.message);
          return true;
        });
        assert.equal(existsSync(tampered), false, 'no archive is left behind');
      }
    } finally {
      writeFileSync(data, original);
    }
    await saveImages(store, ['b21:1'], tampered);
    assert.ok(readFileSync(tampered).equals(readFileSync(img.archive)), 'restored content saves the original bytes again');
  });

  test('B23: symlinked layer.tar members resolve inside the archive (relative, absolute, chained, via a dir link); escapes and loops are refused', async (t) => {
    if (!requiresOverlay(t)) return;
    const layers = await Promise.all(['a', 'b', 'c', 'a'].map((n) => layerTar([{ name: `b23-${n}`, content: `layer ${n}` }])));
    const diffIds = layers.map(sha);
    const cfg = imageConfig(diffIds);
    const cfgName = `${sha(cfg).slice(7)}.json`;
    const archive = (name: string, layerNames: string[], extra: TarEntrySpec[]): string => {
      const f = join(work, `${name}.tar`);
      writeFileSync(f, tarOf([
        { name: 'manifest.json', body: JSON.stringify([{ Config: cfgName, RepoTags: [`${name}:1`], Layers: layerNames }]) },
        { name: cfgName, body: cfg },
        { name: 'real-a/', type: 'dir' },
        { name: 'real-a/layer.tar', body: layers[0]! },
        { name: 'real-b/layer.tar', body: layers[1]! },
        { name: 'real-c/layer.tar', body: layers[2]! },
        ...extra,
      ]));
      return f;
    };
    const good = archive('b23', ['abs/layer.tar', 'chain1/layer.tar', 'dirlink/layer.tar', 'rel/layer.tar'], [
      { name: 'abs/layer.tar', type: 'symlink', linkname: '/real-a/layer.tar' }, // absolute: the archive root
      { name: 'chain1/layer.tar', type: 'symlink', linkname: '../chain2/layer.tar' },
      { name: 'chain2/layer.tar', type: 'symlink', linkname: '../real-b/./layer.tar' },
      { name: 'dirlink', type: 'symlink', linkname: 'real-c' }, // a symlinked directory component
      { name: 'rel/layer.tar', type: 'symlink', linkname: '../real-a/layer.tar' },
    ]);
    const r = await loadImages(store, good);
    assert.deepEqual(r.images, [{ id: sha(cfg), tags: ['b23:1'] }]);
    const e = await (async () => {
      await createContainer(store, 'b23c', 'b23:1');
      return containerEngine(store, 'b23c');
    })();
    assert.deepEqual((await e.readdir('/')).filter((n) => n.startsWith('b23-')).sort(), ['b23-a', 'b23-b', 'b23-c']);
    assert.equal(await e.readFile('/b23-c', 'utf8'), 'layer c');
    await removeContainer(store, 'b23c');
    // Outside the archive: climbing above its root, or an absolute host path it does not hold.
    writeFileSync(join(work, 'outside.tar'), layers[0]!);
    const bad: Array<[string, TarEntrySpec[], string, string, RegExp]> = [
      ['b23-up', [{ name: 'evil/layer.tar', type: 'symlink', linkname: '../../outside.tar' }], 'EINVAL', 'archive-member-escapes', /outside the archive/],
      ['b23-dirup', [{ name: 'evil', type: 'symlink', linkname: '../..' }], 'EINVAL', 'archive-member-escapes', /outside the archive/],
      ['b23-abs', [{ name: 'evil/layer.tar', type: 'symlink', linkname: join(work, 'outside.tar') }], 'ENOENT', 'archive-member-missing', /symlink.*not in the archive/],
      ['b23-loop', [{ name: 'evil/layer.tar', type: 'symlink', linkname: '../loop/layer.tar' }, { name: 'loop/layer.tar', type: 'symlink', linkname: '../evil/layer.tar' }], 'ELOOP', 'archive-member-loop', /symlinks/],
    ];
    for (const [name, extra, code, reason, msg] of bad) {
      const f = archive(name, ['real-a/layer.tar', 'real-b/layer.tar', 'real-c/layer.tar', name === 'b23-dirup' ? 'evil/outside.tar' : 'evil/layer.tar'], extra);
      await rejectsUnchanged(store.root, () => loadImages(store, f), (err) => {
        assert.equal(err.code, code, err.message);
        assert.equal(err.reason, reason, err.message);
        assert.match(err.message, msg);
        assert.match(err.message, /evil/);
      });
    }
  });
});

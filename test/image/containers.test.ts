import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readlinkSync, lstatSync, writeFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { kernelOverlayWorks, requiresOverlay, tempDir } from '../helpers/requires.js';
import {
  ImageStore, loadImages, createContainer, mountContainer, umountContainer, isContainerMounted, containerChanges,
  commitContainer, removeContainer, removeImage, saveImages, tagImage,
} from '../../src/image/index.js';
import { OverlayError } from '../../src/errors.js';
import { dockerSaveArchive, threeLayers, treeSnapshot } from './fixtures.js';

const gated = !kernelOverlayWorks() && process.env['CI'] !== 'true';


/** Files of a dir tree: "path type mode [-> target]" sorted. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const r = `${rel}/${n}`;
      const st = lstatSync(p);
      const t = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : st.isCharacterDevice() ? 'c' : '?';
      out.push(`${r} ${t} ${(st.mode & 0o7777).toString(8)}${t === 'l' ? ` -> ${readlinkSync(p)}` : ''}${t === 'f' ? ` ${st.size}` : ''} ${st.uid}:${st.gid}`);
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return out;
}

describe('containers on small images', { skip: gated ? 'needs root and a kernel overlay mount' : false }, () => {
  let work: string;
  let store: ImageStore;
  let small: { archive: string; id: string };
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ovl2-ctr-'));
    small = await dockerSaveArchive(join(work, 'in'), await threeLayers(), 'small:1');
    store = await ImageStore.open(join(work, 'root'));
    await loadImages(store, small.archive);
  });
  after(() => {
    spawnSync('sh', ['-c', `grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  });

  test('createContainer() makes Docker\'s init layer <mount-id>-init and an rw layer on it', async (t) => {
    if (!requiresOverlay(t)) return;
    const c = await createContainer(store, 'one', 'small:1');
    const m = await store.meta.readMount(c.id);
    assert.equal(m?.mountId, c.mountId);
    assert.equal(m?.initId, `${c.mountId}-init`);
    const init = listing(store.diffDir(`${c.mountId}-init`));
    assert.deepEqual(init, [
      '/.dockerenv f 755 0 0:0',
      '/dev d 755 0:0', '/dev/console f 755 0 0:0', '/dev/pts d 755 0:0', '/dev/shm d 755 0:0',
      '/etc d 755 0:0', '/etc/hostname f 755 0 0:0', '/etc/hosts f 755 0 0:0', '/etc/mtab l 777 -> /proc/mounts 0:0',
      '/etc/resolv.conf f 755 0 0:0',
      '/proc d 755 0:0', '/sys d 755 0:0',
    ]);
    assert.deepEqual(readdirSync(store.diffDir(c.mountId)), []);
    const lower = (await store.driver.lowerDirs(c.mountId)) ?? [];
    assert.equal(lower[0], store.diffDir(`${c.mountId}-init`));
    const cfg = (await store.containers()).find((x) => x.ID === c.id);
    assert.equal(cfg?.Name, '/one');
    assert.equal(cfg?.Image, await store.resolveImage('small:1'));
    // The data root's dirs have the modes a live dockerd 20.10 gave the same image and container
    // (read off /var/lib/docker after `docker load` + `docker create`).
    const mode = (p: string): string => (lstatSync(join(store.root, p)).mode & 0o7777).toString(8);
    assert.deepEqual(
      ['', 'image', 'image/overlay2', 'image/overlay2/layerdb', 'image/overlay2/layerdb/sha256', 'image/overlay2/layerdb/mounts',
        `image/overlay2/layerdb/mounts/${c.id}`, 'image/overlay2/imagedb', 'image/overlay2/imagedb/content', 'containers', 'overlay2', 'overlay2/l'].map(mode),
      ['710', '700', '700', '700', '755', '755', '755', '700', '700', '710', '710', '700'],
    );
  });

  test('createContainer() refuses a taken name and an invalid name with Docker\'s wording; nothing changes', async (t) => {
    if (!requiresOverlay(t)) return;
    const before = treeSnapshot(store.root);
    await assert.rejects(createContainer(store, 'one', 'small:1'), (e: unknown) => e instanceof OverlayError && e.code === 'EEXIST' && /The container name "\/one" is already in use/.test(e.message));
    await assert.rejects(createContainer(store, 'b@d', 'small:1'), (e: unknown) => e instanceof OverlayError && e.code === 'EINVAL' && /Invalid container name \(b@d\)/.test(e.message));
    assert.deepEqual(treeSnapshot(store.root), before);
  });

  test('mount → write → changes → commit → the new image has the change; rm refuses while mounted', async (t) => {
    if (!requiresOverlay(t)) return;
    const merged = await mountContainer(store, 'one');
    assert.equal(await isContainerMounted(store, 'one'), true);
    writeFileSync(join(merged, 'etc', 'new.txt'), 'new\n');
    rmSync(join(merged, 'etc', 'a.txt'));
    await assert.rejects(removeContainer(store, 'one'), (e: unknown) => e instanceof OverlayError && e.code === 'EBUSY');
    const changes = await containerChanges(store, 'one');
    assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`).sort(), ['C /etc', 'A /etc/new.txt', 'D /etc/a.txt'].sort());
    await umountContainer(store, 'one');
    assert.equal(await isContainerMounted(store, 'one'), false);
    const r = await commitContainer(store, 'one', 'small:2', { message: 'added new.txt' });
    assert.equal(r.emptyLayer, false);
    const img = (await store.images()).find((i) => i.id === r.id);
    assert.deepEqual(img?.tags, ['small:2']);
    assert.equal(img?.layers.length, 4);
    const { config } = await store.config(r.id);
    const history = config['history'] as Array<Record<string, unknown>>;
    assert.equal(history.at(-1)?.['comment'], 'added new.txt');
    assert.equal(await store.meta.imageParent(r.id), await store.resolveImage('small:1'));
    // the new layer's content, through a fresh container of the committed image
    const c2 = await createContainer(store, 'two', 'small:2');
    const m2 = await mountContainer(store, 'two');
    assert.equal(existsSync(join(m2, 'etc', 'new.txt')), true);
    assert.equal(existsSync(join(m2, 'etc', 'a.txt')), false);
    await umountContainer(store, 'two');
    await removeContainer(store, c2.id);
    // and it saves (a generated docker-save archive, loadable again)
    const out = join(work, 'small2.tar');
    await saveImages(store, ['small:2'], out);
    const list = spawnSync('tar', ['-tf', out]).stdout.toString().split('\n');
    assert.ok(list.includes('manifest.json') && list.includes('repositories') && list.includes(`${r.id.slice(7)}.json`));
    // ... into a fresh store: same image id, same chain, and saving it again gives the same bytes
    const other = await ImageStore.open(join(work, 'root2'));
    const loaded = await loadImages(other, out);
    assert.deepEqual(loaded.images, [{ id: r.id, tags: ['small:2'] }]);
    assert.equal(loaded.layersCreated.at(-1), r.chainId);
    const again = join(work, 'small2-again.tar');
    await saveImages(other, ['small:2'], again);
    assert.ok(readFileSync(again).equals(readFileSync(out)));
  });

  test('a commit with no changes is an empty_layer: no new layer, the same diff_ids', async (t) => {
    if (!requiresOverlay(t)) return;
    await createContainer(store, 'empty', 'small:1');
    const r = await commitContainer(store, 'empty', 'small:empty');
    assert.equal(r.emptyLayer, true);
    assert.equal(r.chainId, null);
    const { config } = await store.config(r.id);
    const parent = await store.config(await store.resolveImage('small:1'));
    assert.deepEqual(ImageStore.diffIdsOf(config), ImageStore.diffIdsOf(parent.config));
    assert.equal((config['history'] as Array<Record<string, unknown>>).at(-1)?.['empty_layer'], true);
  });

  test('rmi -f refuses an image a mounted container uses, as Docker refuses a running container\'s ("cannot be forced")', async (t) => {
    if (!requiresOverlay(t)) return;
    const store = await ImageStore.open(join(tempDir(t), 'root'));
    await loadImages(store, small.archive);
    const c = await createContainer(store, 'busy', 'small:1');
    await mountContainer(store, 'busy');
    const id = (await store.images()).find((i) => i.tags.includes('small:1'))?.id as string;
    const short = id.slice(7, 19);
    const message = `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${c.id.slice(0, 12)}`;
    const before = treeSnapshot(store.root);
    // By id (also a unique prefix), forced or not, and with a second tag: nothing changes.
    await tagImage(store, 'small:1', 'second:1');
    const withTwo = treeSnapshot(store.root);
    for (const [ref, force] of [[id, true], [short, true], [id, false]] as const) {
      await assert.rejects(removeImage(store, ref, { force }), (e: unknown) => {
        assert.ok(e instanceof OverlayError, String(e));
        assert.equal(e.code, 'EBUSY');
        assert.equal(e.reason, 'image-in-use');
        assert.ok(e.message.endsWith(`: ${message}`), e.message);
        return true;
      });
      assert.deepEqual(treeSnapshot(store.root), withTwo, `rmi ${force ? '-f ' : ''}${ref} changed the store`);
    }
    await removeImage(store, 'second:1');
    assert.deepEqual(treeSnapshot(store.root), before);
    // By its last tag, forced: Docker untags and keeps the image a running container uses.
    assert.deepEqual(await removeImage(store, 'small:1', { force: true }), [{ Untagged: 'small:1' }]);
    assert.deepEqual((await store.images()).map((i) => [i.id, i.tags]), [[id, []]]);
    assert.ok(await isContainerMounted(store, 'busy'));
    assert.ok(existsSync(join(await mountContainer(store, 'busy'), 'usr/d')));
    await umountContainer(store, 'busy');
    await umountContainer(store, 'busy');
    // Unmounted, it is a stopped container's image: -f deletes it; rm then releases the chain.
    assert.deepEqual(await removeImage(store, id, { force: true }), [{ Deleted: id }]);
    await removeContainer(store, 'busy');
    assert.deepEqual(await store.counts(), { images: 0, layers: 0, containers: 0 });
  });

  test('rmi refuses an image a container uses (Docker\'s wording), rm then rmi removes all of it', async (t) => {
    if (!requiresOverlay(t)) return;
    const before = treeSnapshot(store.root);
    await assert.rejects(removeImage(store, 'small:1'), (e: unknown) => e instanceof OverlayError && e.code === 'EBUSY'
      && /conflict: unable to remove repository reference "small:1" \(must force\) - container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}/.test(e.message));
    assert.deepEqual(treeSnapshot(store.root), before);
    for (const c of await store.containers()) await removeContainer(store, c.ID);
    assert.deepEqual(readdirSync(store.paths.mountsDb), []);
    assert.deepEqual(readdirSync(store.paths.containersDir), []);
    for (const i of await store.images()) {
      for (const tag of i.tags) await removeImage(store, tag).catch((e: unknown) => {
        if (!(e instanceof OverlayError && e.reason === 'image-has-children')) throw e;
      });
    }
    // children first, then the parent
    for (const i of (await store.images()).reverse()) await removeImage(store, i.id);
    assert.deepEqual(await store.images(), []);
    assert.deepEqual(await store.layers(), []);
    assert.deepEqual(readdirSync(store.driver.home).filter((n) => n !== 'l'), []);
  });
});

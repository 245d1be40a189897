/**
 * The real Docker-made images (../shared/realimages) through the whole image layer: load, layers
 * shared by chainID, save byte-identical, merged views vs Docker's trees, and the edge container
 * flow (changes, commit, committed layer and tree) against what Docker produced.
 *
 * Documented deviations, each compared without the field in question:
 *  - the root dir line (`d / …`) mtime: the top layer's dir creation time on Docker's machine
 *    (README of realimages: a docker load of the same archive differs there too);
 *  - in the committed tree, the mtimes of paths the change script touched (and their parents):
 *    they are the time the script ran, here versus on Docker's machine.
 * Runtime emulation (not storage): Docker bind-mounts /etc/hostname, /etc/hosts and
 * /etc/resolv.conf into a running container, so the script's `chmod /etc/hostname` does not reach
 * the rw layer; the test makes the same bind mounts around the chroot.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, createWriteStream, mkdirSync, existsSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { kernelOverlayWorks, requiresCommand, requiresOverlay } from '../helpers/requires.js';
import { realImageArchive, realImageDir, realImagesDir } from '../helpers/realimages.js';
import { assembleLayer } from '../../src/archive/index.js';
import {
  ImageStore, loadImages, saveImages, createContainer, mountContainer, umountContainer, containerChanges,
  commitContainer, removeContainer, removeImage, type LoadResult,
} from '../../src/image/index.js';
import { chainIds } from '../../src/image/digest.js';
import { OverlayError } from '../../src/errors.js';
import { treeSnapshot } from './fixtures.js';

const gated = !kernelOverlayWorks() && process.env['CI'] !== 'true';

function treeOf(dir: string): string[] {
  return execFileSync('python3', [join(realImagesDir(), 'tree-manifest.py'), dir], { maxBuffer: 1 << 28 }).toString().split('\n').filter((l) => l !== '');
}
const expected = (name: string): string[] => readFileSync(join(realImagesDir(), name), 'utf8').split('\n').filter((l) => l !== '');
const dropMtime = (l: string): string => l.replace(/ mtime=-?\d+/, '');
const pathOf = (l: string): string => l.split(' ')[1] ?? '';
/** Root line: compared without mtime (documented deviation). */
const normRoot = (lines: string[]): string[] => lines.map((l) => (pathOf(l) === '/' ? dropMtime(l) : l));

function diffLines(a: string[], b: string[]): string {
  const sa = new Set(a);
  const sb = new Set(b);
  const extra = a.filter((l) => !sb.has(l)).slice(0, 15);
  const missing = b.filter((l) => !sa.has(l)).slice(0, 15);
  return `ours only:\n${extra.join('\n')}\ndocker only:\n${missing.join('\n')}`;
}

/** Image's merged view through the driver (the top layer's mount), listed. */
async function imageTree(store: ImageStore, ref: string): Promise<string[]> {
  const id = await store.resolveImage(ref);
  const chains = chainIds(ImageStore.diffIdsOf((await store.config(id)).config));
  const top = await store.layer(chains.at(-1) as string);
  const merged = await store.driver.get(top.cacheId);
  try {
    return treeOf(merged);
  } finally {
    await store.driver.put(top.cacheId);
  }
}


describe('real images', { skip: gated ? 'needs root and a kernel overlay mount' : false }, () => {
  let work: string;
  let store: ImageStore;
  let realbase: LoadResult;
  let edge: LoadResult;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ovl2-real-'));
    store = await ImageStore.open(join(work, 'root'));
    realbase = await loadImages(store, realImageArchive('realbase'));
    edge = await loadImages(store, realImageArchive('edge'));
  });
  after(() => {
    spawnSync('sh', ['-c', `grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  });

  test('load() of realbase and edge shares the base layer by chainID', async (t) => {
    if (!requiresOverlay(t)) return;
    assert.equal(realbase.layersCreated.length, 1);
    assert.deepEqual(realbase.images.map((i) => i.tags), [['realbase:1']]);
    assert.equal(edge.layersCreated.length, 13);
    assert.deepEqual(edge.layersReused, realbase.layersCreated);
    const layers = await store.layers();
    assert.equal(layers.length, 14);
    const { config } = await store.config(await store.resolveImage('edge:1'));
    const diffIds = ImageStore.diffIdsOf(config);
    const chains = chainIds(diffIds);
    for (const [i, c] of chains.entries()) {
      const rec = layers.find((l) => l.chainId === c);
      assert.equal(rec?.diffId, diffIds[i]);
      assert.equal(rec?.parent ?? null, i === 0 ? null : chains[i - 1]);
    }
  });

  test('load() of edge a second time creates no layer and leaves the store as it was', async (t) => {
    if (!requiresOverlay(t)) return;
    const before = treeSnapshot(store.root);
    const again = await loadImages(store, realImageArchive('edge'));
    assert.deepEqual(again.layersCreated, []);
    assert.equal(again.layersReused.length, 14);
    assert.deepEqual(treeSnapshot(store.root), before);
  });

  for (const name of ['realbase', 'edge'] as const) {
    test(`save(${name}:1) is byte-identical to Docker's archive`, async (t) => {
      if (!requiresOverlay(t)) return;
      const out = join(work, `${name}.saved.tar`);
      await saveImages(store, [`${name}:1`], out);
      const r = spawnSync('cmp', [out, realImageArchive(name)]);
      assert.equal(r.status, 0, `cmp: ${r.stdout.toString()}${r.stderr.toString()}`);
      rmSync(out);
    });

    test(`${name}:1 merged view equals ${name}.expected-tree.txt (root mtime aside)`, async (t) => {
      if (!requiresOverlay(t) || !requiresCommand(t, 'python3')) return;
      const ours = normRoot(await imageTree(store, `${name}:1`));
      const docker = normRoot(expected(`${name}.expected-tree.txt`));
      assert.deepEqual(ours, docker, diffLines(ours, docker));
    });
  }

  for (const name of ['realbase', 'edge'] as const) {
    test(`${name}: a container's kernel-mounted merged view is ${name}.expected-tree.txt plus Docker's init files`, async (t) => {
      if (!requiresOverlay(t) || !requiresCommand(t, 'python3')) return;
      const ctr = `${name}-view`;
      const c = await createContainer(store, ctr, `${name}:1`);
      const merged = await mountContainer(store, ctr);
      let ours: string[];
      try {
        assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === merged && l.includes(' - overlay ')), 'a kernel overlay mount');
        ours = treeOf(merged);
      } finally {
        await umountContainer(store, ctr);
      }
      const docker = expected(`${name}.expected-tree.txt`);
      // Deviation (Docker's own container behaviour, not ours): Docker's setupInitLayer unlinks each
      // init entry that is not a directory in the image (e.g. the image's /dev/console device and
      // /etc/hostname) and makes it anew — empty 0755 files, 0755 dirs, /etc/mtab -> /proc/mounts —
      // which changes the mtime of their parent dirs; the root line is the rw layer's diff root.
      // Those lines are checked apart; every other line must equal Docker's.
      const INIT: Array<[string, 'dir' | 'file' | 'link']> = [
        ['/dev/pts', 'dir'], ['/dev/shm', 'dir'], ['/proc', 'dir'], ['/sys', 'dir'], ['/.dockerenv', 'file'], ['/etc/resolv.conf', 'file'],
        ['/etc/hosts', 'file'], ['/etc/hostname', 'file'], ['/dev/console', 'file'], ['/etc/mtab', 'link'],
      ];
      // tree-manifest.py lists a top-level dotfile without its leading dots ('/.dockerenv' as '/dockerenv').
      const listed = (p: string): string => `/${p.slice(1).replace(/^\.+/, '')}`;
      const typeInImage = new Map(docker.map((l) => [pathOf(l), l.split(' ')[0]]));
      const remade = INIT.map(([p, k]): [string, typeof k] => [listed(p), k]).filter(([p]) => typeInImage.get(p) !== 'd');
      assert.ok(remade.length >= 5, 'the images lack /.dockerenv, /etc/hosts, /etc/mtab and carry /dev/console and /etc/hostname as non-dirs');
      for (const [p, kind] of remade) {
        const l = ours.find((x) => pathOf(x) === p) ?? `missing ${p}`;
        if (kind === 'dir') assert.match(l, /^d \S+ 0755 0:0 size=0 /, l);
        else if (kind === 'file') assert.match(l, /^f \S+ 0755 0:0 size=0 /, l);
        else assert.match(l, /^l \/etc\/mtab 0777 0:0 .* -> \/proc\/mounts$/, l);
      }
      const remadePaths = new Set(remade.map(([p]) => p));
      const touched = new Set(['/', ...remade.map(([p]) => p.slice(0, p.lastIndexOf('/')) || '/')]);
      const norm = (lines: string[]): string[] => lines.filter((l) => !remadePaths.has(pathOf(l))).map((l) => (touched.has(pathOf(l)) ? dropMtime(l) : l));
      const o = norm(ours);
      const d = norm(docker);
      assert.deepEqual(o, d, diffLines(o, d));
      await removeContainer(store, ctr);
      assert.equal(await store.driver.exists(c.mountId), false);
    });
  }

  test('load() of edge with one flipped byte in a layer fails and changes nothing', async (t) => {
    if (!requiresOverlay(t)) return;
    const dir = join(work, 'edge-flip');
    execFileSync('cp', ['-al', realImageDir('edge'), dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
    const last = join(dir, manifest[0]?.Layers.at(-1) as string);
    const bytes = readFileSync(last);
    rmSync(last);
    bytes[700] = (bytes[700] as number) ^ 0x01;
    writeFileSync(last, bytes);
    const before = treeSnapshot(store.root);
    await assert.rejects(loadImages(store, dir), (e: unknown) => e instanceof OverlayError && e.reason === 'diffid-mismatch' && /layer 13/.test(e.message));
    assert.deepEqual(treeSnapshot(store.root), before);
  });

  test('load() of a truncated edge archive fails with EINVAL and changes nothing', async (t) => {
    if (!requiresOverlay(t)) return;
    const cut = join(work, 'edge-cut.tar');
    execFileSync('sh', ['-c', `head -c 150000000 "$1" > "$2"`, 'sh', realImageArchive('edge'), cut]);
    const before = treeSnapshot(store.root);
    await assert.rejects(loadImages(store, cut), (e: unknown) => e instanceof OverlayError && e.code === 'EINVAL');
    assert.deepEqual(treeSnapshot(store.root), before);
    rmSync(cut);
  });

  test('edge container: changes = docker diff, commit layer = docker commit, committed tree = Docker\'s', async (t) => {
    if (!requiresOverlay(t) || !requiresCommand(t, 'python3') || !requiresCommand(t, 'chroot')) return;
    const c = await createContainer(store, 'edgetest', 'edge:1');
    assert.equal(c.name, 'edgetest');
    const mounts = await store.meta.readMount(c.id);
    assert.equal(mounts?.initId, `${c.mountId}-init`);
    const merged = await mountContainer(store, 'edgetest');
    // Docker's runtime bind mounts (see the header comment).
    const rt = join(work, 'runtime');
    mkdirSync(rt, { recursive: true });
    const binds: string[] = [];
    try {
      for (const f of ['etc/hostname', 'etc/hosts', 'etc/resolv.conf']) {
        writeFileSync(join(rt, f.replace('/', '_')), '');
        execFileSync('mount', ['--bind', join(rt, f.replace('/', '_')), join(merged, f)]);
        binds.push(join(merged, f));
      }
      execFileSync('mount', ['--bind', '/dev/null', join(merged, 'dev/null')]);
      binds.push(join(merged, 'dev/null'));
      execFileSync('chroot', [merged, 'bash', '-s'], { input: readFileSync(join(realImagesDir(), 'edge.container-changes.sh')) });
    } finally {
      for (const b of binds.reverse()) spawnSync('umount', [b]);
    }
    const changes = await containerChanges(store, 'edgetest');
    const ours = changes.map((ch) => `${ch.kind} ${ch.path}`).sort();
    const docker = expected('edge.docker-diff.txt').sort();
    assert.deepEqual(ours, docker, diffLines(ours, docker));
    await umountContainer(store, 'edgetest');

    const committed = await commitContainer(store, 'edgetest', 'edge-committed:1');
    assert.equal(committed.emptyLayer, false);
    assert.equal(committed.tag, 'edge-committed:1');
    const rec = await store.layer(committed.chainId as string);
    const layerTar = join(work, 'commit-layer.tar');
    const out = createWriteStream(layerTar);
    const closed = new Promise<void>((res) => out.on('close', () => res()));
    await assembleLayer(store.meta.tarSplitPath(rec.chainId), store.diffDir(rec.cacheId), out);
    out.end();
    await closed;
    const dump = execFileSync('python3', [join(realImagesDir(), 'dump-layer-tar.py'), layerTar]).toString().split('\n').filter((l) => l !== '');
    // path, type, mode, owner, link target, size (uname/gname, mtime and PAX records are not compared).
    const fields = (l: string): string => {
      const m = /^(\S+) (\S+) (\S+) (\d+:\d+)\([^)]*\) size=(\d+) mtime=\S+( -> \S+)?/.exec(l);
      return m === null ? `unparsed: ${l}` : [m[1], m[2], m[3], m[4], m[5], m[6] ?? ''].join(' ');
    };
    assert.deepEqual(dump.map(fields), expected('edge.commit-layer.txt').map(fields));

    // The committed image's merged view; mtimes of touched paths differ (the script ran here, now).
    const touched = new Set<string>(['/']);
    for (const l of docker) {
      let p = l.slice(2);
      while (p !== '' && p !== '/') { touched.add(p); p = p.slice(0, p.lastIndexOf('/')) || '/'; }
    }
    const norm = (lines: string[]): string[] => lines.map((l) => (touched.has(pathOf(l)) ? dropMtime(l) : l));
    const oursTree = norm(await imageTree(store, 'edge-committed:1'));
    const dockerTree = norm(expected('edge-committed.expected-tree.txt'));
    assert.deepEqual(oursTree, dockerTree, diffLines(oursTree, dockerTree));

    // rmi refuses while the container exists (Docker's wording), rm then rmi cleans up.
    await assert.rejects(removeImage(store, 'edge:1'), (e: unknown) => e instanceof OverlayError && e.code === 'EBUSY' && /must force/.test(e.message));
    await removeContainer(store, 'edgetest');
    assert.equal(existsSync(store.paths.mountDir(c.id)), false);
    const before = (await store.layers()).length;
    await removeImage(store, 'edge-committed:1');
    assert.equal((await store.layers()).length, before - 1);
  });
});

describe('real image as an OCI layout (skopeo)', { skip: gated ? 'needs root and a kernel overlay mount' : false }, () => {
  let work: string | undefined;
  after(() => {
    if (work === undefined) return;
    spawnSync('sh', ['-c', `grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  });

  test('load() of `skopeo copy docker-archive:realbase.tar oci:DIR:1` (gzip layer) gives Docker\'s tree', async (t) => {
    if (!requiresOverlay(t) || !requiresCommand(t, 'skopeo') || !requiresCommand(t, 'python3')) return;
    work ??= mkdtempSync(join(tmpdir(), 'ovl2-oci-'));
    const oci = join(work, 'realbase-oci');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${realImageArchive('realbase')}`, `oci:${oci}:1`]);
    const store = await ImageStore.open(join(work, 'root'));
    const r = await loadImages(store, oci, { repository: 'realbase-oci' });
    assert.equal(r.images.length, 1);
    assert.deepEqual(r.images[0]?.tags, ['realbase-oci:1']);
    assert.equal(r.layersCreated.length, 1);
    // skopeo rewrites the config (OCI form) but keeps the diffIDs: same chainID as Docker's layer.
    const docker = JSON.parse(readFileSync(join(realImageDir('realbase'), (JSON.parse(readFileSync(join(realImageDir('realbase'), 'manifest.json'), 'utf8')) as Array<{ Config: string }>)[0]?.Config as string), 'utf8')) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(r.layersCreated, chainIds(docker.rootfs.diff_ids));
    const ours = normRoot(await imageTree(store, 'realbase-oci:1'));
    const expectedTree = normRoot(expected('realbase.expected-tree.txt'));
    assert.deepEqual(ours, expectedTree, diffLines(ours, expectedTree));
  });
  test('load() of edge as skopeo\'s OCI layout, directory (library) and oci-archive tar (CLI): Docker\'s chainIDs and tree', async (t) => {
    if (!requiresOverlay(t) || !requiresCommand(t, 'skopeo') || !requiresCommand(t, 'python3')) return;
    work ??= mkdtempSync(join(tmpdir(), 'ovl2-oci-'));
    const dockerDir = realImageDir('edge');
    const dockerManifest = JSON.parse(readFileSync(join(dockerDir, 'manifest.json'), 'utf8')) as Array<{ Config: string }>;
    const dockerConfig = JSON.parse(readFileSync(join(dockerDir, dockerManifest[0]?.Config as string), 'utf8')) as { rootfs: { diff_ids: string[] } };
    const dockerChains = chainIds(dockerConfig.rootfs.diff_ids);
    assert.equal(dockerChains.length, 14);
    const expectedTree = normRoot(expected('edge.expected-tree.txt'));

    const dir = join(work, 'edge-oci');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${realImageArchive('edge')}`, `oci:${dir}:1`]);
    const s1 = await ImageStore.open(join(work, 'root-edge-dir'));
    const r = await loadImages(s1, dir, { repository: 'edge-oci' });
    assert.deepEqual(r.images.map((i) => i.tags), [['edge-oci:1']]);
    assert.deepEqual(r.layersCreated, dockerChains, 'skopeo keeps the diffIDs: the chainIDs are Docker\'s');
    const fromDir = normRoot(await imageTree(s1, 'edge-oci:1'));
    assert.deepEqual(fromDir, expectedTree, diffLines(fromDir, expectedTree));

    const tarFile = join(work, 'edge-oci.tar');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${realImageArchive('edge')}`, `oci-archive:${tarFile}:1`]);
    const root2 = join(work, 'root-edge-tar');
    const cli = spawnSync(process.execPath, [join(process.cwd(), 'bin', 'overlay2.js'), '--root', root2, 'load', tarFile, '--repository', 'edge-ocitar'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(cli.stdout.trim(), 'Loaded image: edge-ocitar:1');
    const s2 = await ImageStore.open(root2);
    assert.deepEqual((await s2.layers()).map((l) => l.chainId).sort(), [...dockerChains].sort());
    const fromTar = normRoot(await imageTree(s2, 'edge-ocitar:1'));
    assert.deepEqual(fromTar, expectedTree, diffLines(fromTar, expectedTree));
  });
  test('load() of edge in Docker 25+\'s `docker save` layout (blobs/sha256, index.json and manifest.json) gives Docker\'s chainIDs and tree', async (t) => {
    if (!requiresOverlay(t) || !requiresCommand(t, 'python3')) return;
    work ??= mkdtempSync(join(tmpdir(), 'ovl2-oci-'));
    // Re-shaped from Docker 20.10's archive the way Docker 25 writes it: uncompressed layers and the
    // config as blobs named by their digests, manifest.json pointing at them, plus the OCI index.
    const src = realImageDir('edge');
    const [m] = JSON.parse(readFileSync(join(src, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    assert.ok(m !== undefined);
    const cfgBytes = readFileSync(join(src, m.Config));
    const cfgHex = m.Config.replace(/\.json$/, '');
    const diffIds = (JSON.parse(cfgBytes.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    const dir = join(work, 'edge-docker25');
    const blobs = join(dir, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, cfgHex), cfgBytes);
    const layers = m.Layers.map((l, i) => {
      const hex = (diffIds[i] as string).slice(7);
      if (!existsSync(join(blobs, hex))) execFileSync('ln', [join(src, l), join(blobs, hex)]);
      return { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffIds[i] as string, size: statSync(join(src, l)).size };
    });
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${cfgHex}`, size: cfgBytes.length }, layers }));
    const manHex = createHash('sha256').update(manifest).digest('hex');
    writeFileSync(join(blobs, manHex), manifest);
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${manHex}`, size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/edge25:1', 'org.opencontainers.image.ref.name': '1' } }] }));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${cfgHex}`, RepoTags: ['edge25:1'], Layers: diffIds.map((d) => `blobs/sha256/${d.slice(7)}`) }]));
    const tarFile = join(work, 'edge-docker25.tar');
    execFileSync('tar', ['-cf', tarFile, '-C', dir, 'blobs', 'index.json', 'manifest.json', 'oci-layout']);
    const s = await ImageStore.open(join(work, 'root-edge-docker25'));
    const r = await loadImages(s, tarFile);
    assert.deepEqual(r.images, [{ id: `sha256:${cfgHex}`, tags: ['edge25:1'] }], 'the image id is Docker\'s: the config bytes are unchanged');
    assert.deepEqual(r.layersCreated, chainIds(diffIds));
    const tree = normRoot(await imageTree(s, 'edge25:1'));
    const expectedTree = normRoot(expected('edge.expected-tree.txt'));
    assert.deepEqual(tree, expectedTree, diffLines(tree, expectedTree));
  });
});

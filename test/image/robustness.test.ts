/**
 * Robustness of the image layer against what testers found: leaked layers after `rmi -f` + `rm`,
 * crash leftovers of killed processes, a failed open leaving dirs behind, empty archives, invalid
 * or inapplicable `--repository`, compressed outer archives, corrupt container records, and
 * tagImage's return value. One data root for the whole file (images built in code), plus fresh
 * roots where a test needs a pristine or failing one.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { once } from 'node:events';
import { kernelOverlayWorks, requiresCommand, requiresOverlay, tempDir } from '../helpers/requires.js';
import { ImageStore, loadImages, createContainer, removeContainer, removeImage, tagImage } from '../../src/image/index.js';
import { parseRepository } from '../../src/image/reference.js';
import { ownerPid } from '../../src/image/store.js';
import { chainIds } from '../../src/image/digest.js';
import { withRootLock } from '../../src/fsutil/lock.js';
import { OverlayError } from '../../src/errors.js';
import { dockerSaveArchive, layerTar, ociLayout, threeLayers, treeSnapshot } from './fixtures.js';

const gated = !kernelOverlayWorks() && process.env['CI'] !== 'true';

async function rejectsUnchanged(root: string, fn: () => Promise<unknown>, check: (e: OverlayError) => void): Promise<void> {
  const before = treeSnapshot(root);
  await assert.rejects(fn(), (e: unknown) => {
    assert.ok(e instanceof OverlayError, `expected OverlayError, got ${String(e)}`);
    check(e);
    return true;
  });
  assert.deepEqual(treeSnapshot(root), before, 'the data root changed after a failed operation');
}

/** A tar holding the given members (name → content). */
async function tarOf(members: Record<string, string>): Promise<Buffer> {
  return layerTar(Object.entries(members).map(([name, content]) => ({ name, content })));
}

/** The pid of a process that has exited (so no process has it, barring reuse). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

/** Driver layer dirs under the driver home (not l/). */
const driverLayers = (store: ImageStore): string[] => readdirSync(store.driver.home).filter((n) => n !== 'l').sort();

const CLI = join(process.cwd(), 'bin', 'overlay2.js');

/** `overlay2 --root root ARGS…` in its own process: exit status and output. */
function cli(root: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Run `loadImages(root, archive)` in a child process and SIGKILL it right after its `creates`-th
 * driver layer is extracted (before that layer's layerdb entry is written): the state a `kill -9`
 * in the middle of a load leaves, at a point fixed by the test, not by timing. The child's script
 * is a file in `dir` (the apply workers inherit the process's exec options, so not `-e`).
 */
async function killLoadAfter(dir: string, root: string, archive: string, creates: number): Promise<void> {
  const index = fileURLToPath(new URL('../../src/image/index.js', import.meta.url));
  const script = join(dir, 'killed-load.mjs');
  writeFileSync(script, `
    const { ImageStore, loadImages } = await import(${JSON.stringify(index)});
    const s = await ImageStore.open(process.argv[2]);
    const create = s.driver.createFromTar.bind(s.driver);
    let n = 0;
    s.driver.createFromTar = async (...args) => {
      const r = await create(...args);
      if (++n === ${creates}) { console.log('stopped'); setInterval(() => {}, 1000); await new Promise(() => {}); }
      return r;
    };
    await loadImages(s, process.argv[3]);
    console.log('finished');
  `);
  const child = spawn(process.execPath, [script, root, archive], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the load ended (${code}) before its layers were made: ${out}`)));
  });
  assert.equal(out.trim(), 'stopped');
  child.kill('SIGKILL');
  const [, signal] = (await exited) as [number | null, string | null];
  assert.equal(signal, 'SIGKILL');
}

describe('image store robustness', { skip: gated ? 'needs root and a kernel overlay mount' : false }, () => {
  let work: string;
  let store: ImageStore;
  let small: { archive: string; id: string; diffIds: string[] };
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ovl2-robust-'));
    small = await dockerSaveArchive(join(work, 'in'), await threeLayers(), 'small:1');
    store = await ImageStore.open(join(work, 'root'));
  });
  after(() => {
    spawnSync('sh', ['-c', `grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  });

  test('rmi -f of an image a container uses, then rm of the container, releases every layer', async (t) => {
    if (!requiresOverlay(t)) return;
    await loadImages(store, small.archive);
    const c = await createContainer(store, 'user', 'small:1');
    const r = await removeImage(store, 'small:1', { force: true });
    assert.deepEqual(r, [{ Untagged: 'small:1' }, { Deleted: small.id }]);
    assert.equal((await store.counts()).layers, 3, 'the container still pins the chain');
    await removeContainer(store, c.id);
    assert.deepEqual(await store.counts(), { images: 0, layers: 0, containers: 0 });
    assert.deepEqual(driverLayers(store), []);
  });

  test('rmi deletes only its own chain; layers an earlier removal left unreferenced are left to prune', async (t) => {
    if (!requiresOverlay(t)) return;
    await loadImages(store, small.archive);
    const other = await dockerSaveArchive(join(work, 'other'), [await layerTar([{ name: 'o', content: 'other' }])], 'other:1');
    await loadImages(store, other.archive);
    // small:1's config and tag gone, its three layers left behind: what the old rm leaked.
    await store.meta.removeImage(small.id);
    const tags = await store.meta.readTags();
    tags.delete('small:1');
    await store.meta.writeTags(tags);
    assert.equal((await store.counts()).layers, 4);
    const out = await removeImage(store, 'other:1');
    assert.deepEqual(out, [{ Untagged: 'other:1' }, { Deleted: other.id }, { Deleted: other.diffIds[0] }]);
    assert.equal((await store.counts()).layers, 3, 'the unrelated orphans stay for prune');
    const pruned = await store.cleanupOrphans();
    assert.deepEqual(pruned.chains, [...chainIds(small.diffIds)].reverse());
    assert.deepEqual(await store.counts(), { images: 0, layers: 0, containers: 0 });
    assert.deepEqual(driverLayers(store), []);
  });

  test('a load killed mid-way: rmi of another image deletes only that image\'s chain, prune the rest', async (t) => {
    if (!requiresOverlay(t)) return;
    const base = tempDir(t);
    const a = await dockerSaveArchive(join(base, 'a'), await threeLayers(), 'a:1');
    const [l0, l1] = await threeLayers();
    const extra = await Promise.all(['x', 'y', 'z'].map((n) => layerTar([{ name: n, content: n.repeat(1000) }])));
    const b = await dockerSaveArchive(join(base, 'b'), [l0 as Buffer, l1 as Buffer, ...extra], 'b:1');
    const root = join(base, 'root');
    const s = await ImageStore.open(root);
    await loadImages(s, a.archive);
    const aChains = chainIds(a.diffIds);
    const bChains = chainIds(b.diffIds);
    // B's first two layers are A's; x and y get layerdb entries, z only its driver dir.
    await killLoadAfter(base, root, b.archive, 3);
    const layerdb = readdirSync(s.paths.layerDb).sort();
    assert.deepEqual(layerdb, [...aChains, ...bChains.slice(2, 4)].map((c) => c.slice(7)).sort());
    assert.equal(driverLayers(s).length, 6, 'A\'s three, x, y, and z without a layerdb entry');
    assert.deepEqual((await s.images()).map((i) => i.id), [a.id]);
    assert.equal(readdirSync(s.paths.tmpDir).length, 1, 'the killed load\'s scratch');

    const out = await removeImage(s, 'a:1');
    // A's lower two layers are the parents of the orphan x: still in use, kept.
    assert.deepEqual(out, [{ Untagged: 'a:1' }, { Deleted: a.id }, { Deleted: aChains[2] }]);
    assert.deepEqual((await s.layers()).map((l) => l.chainId).sort(), [aChains[0], aChains[1], bChains[2], bChains[3]].sort());

    const again = await ImageStore.open(root);
    const pruned = await again.cleanupOrphans();
    assert.deepEqual(pruned.chains, [bChains[3], bChains[2], aChains[1], aChains[0]]);
    assert.equal(pruned.layers.length, 1, 'z\'s driver dir');
    assert.deepEqual(await again.counts(), { images: 0, layers: 0, containers: 0 });
    assert.deepEqual(driverLayers(again), []);
    assert.deepEqual(readdirSync(join(again.driver.home, 'l')), [], 'no short link left');
    assert.deepEqual(readdirSync(again.paths.tmpDir), []);
  });

  test('a load killed mid-way: `prune` removes the layers no image uses, then `rmi` deletes exactly its chain (CLI)', async (t) => {
    if (!requiresOverlay(t)) return;
    const base = tempDir(t);
    const a = await dockerSaveArchive(join(base, 'a'), await threeLayers(), 'a:1');
    const extra = await Promise.all(['p', 'q', 'r'].map((n) => layerTar([{ name: n, content: n.repeat(5000) }])));
    const b = await dockerSaveArchive(join(base, 'b'), extra, 'b:1');
    const root = join(base, 'root');
    assert.equal(cli(root, ['load', a.archive]).status, 0);
    await killLoadAfter(base, root, b.archive, 3);
    const bChains = chainIds(b.diffIds);
    const layers = JSON.parse(cli(root, ['--json', 'layers']).stdout) as Array<{ chainId: string }>;
    assert.deepEqual(layers.map((l) => l.chainId).sort(), [...chainIds(a.diffIds), bChains[0], bChains[1]].sort());
    const images = JSON.parse(cli(root, ['--json', 'images']).stdout) as Array<{ id: string }>;
    assert.deepEqual(images.map((i) => i.id), [a.id]);

    const prune = cli(root, ['prune']);
    assert.equal(prune.status, 0, prune.stderr);
    const lines = prune.stdout.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.filter((l) => l.startsWith('removed layer ')), [`removed layer ${bChains[1]}`, `removed layer ${bChains[0]}`]);
    assert.equal(lines.filter((l) => l.startsWith('removed orphan layer ')).length, 1);
    assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'the killed load\'s scratch is gone (open sweeps a dead pid\'s)');
    const after = JSON.parse(cli(root, ['--json', 'layers']).stdout) as Array<{ chainId: string }>;
    assert.deepEqual(after.map((l) => l.chainId).sort(), [...chainIds(a.diffIds)].sort());
    assert.equal(cli(root, ['prune']).stdout.trim(), 'nothing to remove');

    const rmi = cli(root, ['rmi', 'a:1']);
    assert.equal(rmi.status, 0, rmi.stderr);
    assert.deepEqual(rmi.stdout.split('\n').filter((l) => l !== ''), [
      'Untagged: a:1', `Deleted: ${a.id}`, ...[...chainIds(a.diffIds)].reverse().map((c) => `Deleted: ${c}`),
    ]);
    assert.deepEqual(readdirSync(join(root, 'overlay2')), ['l']);
  });

  test('scratch dirs carry the pid; open sweeps those of dead processes only (also layerdb staging)', async (t) => {
    if (!requiresOverlay(t)) return;
    const mine = await store.scratch('load');
    assert.match(mine, new RegExp(`/load-${process.pid}-[0-9A-Za-z]{6}$`));
    assert.equal(ownerPid(mine.split('/').at(-1) as string), process.pid);
    const dead = deadPid();
    const deadScratch = join(store.paths.tmpDir, `load-${dead}-aB3dE9`);
    const deadStaging = join(store.paths.layerDb, `.staging-${'cd'.repeat(32)}-${dead}-0a1b2c3d`);
    const liveStaging = join(store.paths.layerDb, `.staging-${'ef'.repeat(32)}-${process.pid}-0a1b2c3d`);
    const legacy = join(store.paths.tmpDir, 'load-Xy12Zq');
    for (const d of [deadScratch, deadStaging, liveStaging, legacy]) mkdirSync(d);
    writeFileSync(join(deadScratch, 'archive.tar'), 'x'.repeat(4096));
    const again = await ImageStore.open(store.root);
    assert.equal(existsSync(deadScratch), false, 'a dead process\'s scratch is removed');
    assert.equal(existsSync(deadStaging), false, 'a dead process\'s staging dir is removed');
    assert.equal(existsSync(mine), true, 'a live process\'s scratch is kept');
    assert.equal(existsSync(liveStaging), true, 'a live process\'s staging dir is kept');
    assert.equal(existsSync(legacy), true, 'a name without a pid is left to cleanupOrphans');
    await again.removeScratch(mine);
    for (const d of [liveStaging, legacy]) rmSync(d, { recursive: true });
  });

  test('the scratch dir of a load killed with SIGKILL is swept by the next open, not while it runs', async (t) => {
    if (!requiresOverlay(t)) return;
    const index = fileURLToPath(new URL('../../src/image/index.js', import.meta.url));
    const script = `
      const { ImageStore } = await import(${JSON.stringify(index)});
      const s = await ImageStore.open(process.argv[1]);
      const d = await s.scratch('load');
      (await import('node:fs')).writeFileSync(d + '/archive.tar', Buffer.alloc(1 << 20));
      console.log(d);
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, store.root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const dir = line.toString().trim();
    assert.ok(existsSync(join(dir, 'archive.tar')));
    await ImageStore.open(store.root);
    assert.equal(existsSync(dir), true, 'kept while its process lives');
    child.kill('SIGKILL');
    await once(child, 'exit');
    await ImageStore.open(store.root);
    assert.equal(existsSync(dir), false, 'swept once its process is dead');
  });

  test('cleanupOrphans (prune) never removes the scratch or staging dir of a live process, even under the exclusive lock', async (t) => {
    if (!requiresOverlay(t)) return;
    const base = tempDir(t);
    const root = join(base, 'root');
    const s = await ImageStore.open(root);
    const a = await dockerSaveArchive(join(base, 'a'), await threeLayers(), 'a:1');
    await loadImages(s, a.archive);
    // Orphans: a's layers (its image record gone, as a killed load leaves them) and a driver dir.
    await s.meta.removeImage(a.id);
    await s.meta.writeTags(new Map());
    const orphan = 'f'.repeat(64);
    await s.driver.create(orphan, null);

    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    const gone = once(sleeper, 'exit');
    t.after(() => sleeper.kill('SIGKILL'));
    const live = sleeper.pid as number;
    const dead = deadPid();
    const tmp = s.paths.tmpDir;
    const liveScratch = `load-${live}-aB3dE9`;
    const liveStaging = `.staging-${'ef'.repeat(32)}-${live}-0a1b2c3d`;
    const deadScratch = `load-${dead}-xY12zQ`;
    const deadStaging = `.staging-${'cd'.repeat(32)}-${dead}-0a1b2c3d`;
    const legacy = 'load-Xy12Zq';
    for (const d of [join(tmp, liveScratch), join(tmp, deadScratch), join(tmp, legacy), join(s.paths.layerDb, liveStaging), join(s.paths.layerDb, deadStaging)]) mkdirSync(d);
    writeFileSync(join(tmp, liveScratch, 'archive.tar'), 'x'.repeat(4096));
    const mine = await s.scratch('save');

    const r = await withRootLock(root, 'exclusive', () => s.cleanupOrphans());
    assert.ok(existsSync(join(tmp, liveScratch, 'archive.tar')), 'a live process\'s scratch is kept');
    assert.ok(existsSync(join(s.paths.layerDb, liveStaging)), 'a live process\'s staging dir is kept');
    assert.ok(existsSync(mine), 'this process\'s scratch is kept');
    assert.deepEqual(r.scratch, [deadScratch, legacy].sort());
    assert.deepEqual(r.staging, [deadStaging]);
    assert.deepEqual(r.inUse, [relative(root, join(s.paths.layerDb, liveStaging)), `tmp/${liveScratch}`, `tmp/${mine.split('/').at(-1) as string}`].sort());
    // While a process works on the store, layers nobody references yet may be its load's: kept.
    assert.deepEqual([r.chains, r.layers], [[], []]);
    assert.equal((await s.counts()).layers, 3);
    assert.ok(existsSync(join(s.driver.home, orphan)));

    // The CLI's prune says what it kept and why.
    const p = cli(root, ['prune']);
    assert.equal(p.status, 0, p.stderr);
    assert.ok(p.stdout.includes(`kept tmp/${liveScratch}: process ${live} is running`), p.stdout);
    assert.ok(p.stdout.includes('kept unreferenced layers'), p.stdout);
    assert.ok(existsSync(join(tmp, liveScratch)));

    sleeper.kill('SIGKILL');
    await gone;
    await s.removeScratch(mine);
    const r2 = await s.cleanupOrphans();
    assert.deepEqual(r2.scratch, [liveScratch]);
    assert.deepEqual(r2.staging, [liveStaging]);
    assert.deepEqual(r2.inUse, []);
    assert.deepEqual(r2.chains, [...chainIds(a.diffIds)].reverse());
    assert.deepEqual(r2.layers, [orphan]);
    assert.deepEqual(driverLayers(s), []);
  });

  test('when the scratch dir vanishes under a running load, the error names the missing path, not the input', async (t) => {
    if (!requiresOverlay(t)) return;
    const base = tempDir(t);
    const big = await dockerSaveArchive(join(base, 'big'), [await layerTar([{ name: 'big', content: 'b'.repeat(24 << 20) }])], 'big:1');
    const s = await ImageStore.open(join(base, 'root'));
    const before = treeSnapshot(s.root);
    let removed = '';
    const poll = setInterval(() => {
      for (const n of readdirSync(s.paths.tmpDir)) {
        if (!existsSync(join(s.paths.tmpDir, n, 'archive'))) continue;
        removed = join(s.paths.tmpDir, n);
        rmSync(removed, { recursive: true, force: true });
        clearInterval(poll);
      }
    }, 1);
    t.after(() => clearInterval(poll));
    await assert.rejects(loadImages(s, big.archive), (e: unknown) => {
      assert.ok(e instanceof OverlayError, String(e));
      assert.equal(e.code, 'ENOENT', e.message);
      assert.notEqual(removed, '', 'the scratch was removed mid-load');
      assert.ok(e.path?.startsWith(`${removed}/`), `the error names the path inside the scratch: ${e.message}`);
      assert.ok(e.message.includes(`'${e.path as string}'`), e.message);
      assert.ok(e.message.includes(big.archive), `and still says which load: ${e.message}`);
      return true;
    });
    assert.deepEqual(treeSnapshot(s.root), before);
  });

  test('a failed open (driver init refuses) leaves nothing new behind', async (t) => {
    if (!requiresOverlay(t)) return;
    const base = tempDir(t);
    const fresh = join(base, 'new-root');
    const quota = { driver: { storageOpts: ['overlay2.size=1G'] } };
    await assert.rejects(ImageStore.open(fresh, quota), (e: unknown) => e instanceof OverlayError && e.code === 'EOPNOTSUPP');
    assert.deepEqual(readdirSync(base), [], 'no root, no skeleton');
    // A root path overlay cannot take as a mount option (',' and ':' separate options and lowers).
    for (const name of ['a,b', 'a:b']) {
      await assert.rejects(ImageStore.open(join(base, name)), (e: unknown) =>
        e instanceof OverlayError && e.code === 'EOPNOTSUPP' && e.message.includes(`the path ${join(base, name)}`) && e.message.includes("contains ',' or ':'"));
      assert.deepEqual(readdirSync(base), [], `nothing left of ${name}`);
    }
    // An existing data root keeps exactly what it had.
    const before = treeSnapshot(store.root);
    await assert.rejects(ImageStore.open(store.root, quota), (e: unknown) => e instanceof OverlayError && e.code === 'EOPNOTSUPP');
    assert.deepEqual(treeSnapshot(store.root), before);
    // A failure after the driver's init (a file where the skeleton wants a dir) rolls back the
    // driver home and every skeleton dir too, intermediate ones included.
    const blocked = join(base, 'blocked');
    mkdirSync(blocked);
    writeFileSync(join(blocked, 'containers'), 'not a dir');
    await assert.rejects(ImageStore.open(blocked), (e: unknown) => e instanceof OverlayError);
    assert.deepEqual(readdirSync(blocked), ['containers']);
    rmSync(blocked, { recursive: true });
    // An existing but empty dir given as the root stays empty.
    mkdirSync(join(base, 'empty'));
    await assert.rejects(ImageStore.open(join(base, 'empty'), quota));
    assert.deepEqual(readdirSync(join(base, 'empty')), []);
  });

  test('an archive listing no images is refused: manifest.json [] and an empty OCI index', async (t) => {
    if (!requiresOverlay(t)) return;
    const emptySave = join(work, 'empty-save.tar');
    writeFileSync(emptySave, await tarOf({ 'manifest.json': '[]', repositories: '{}' }));
    await rejectsUnchanged(store.root, () => loadImages(store, emptySave), (e) => {
      assert.equal(e.code, 'EINVAL');
      assert.equal(e.reason, 'no-images');
      assert.ok(e.message.includes(`no images in archive ${emptySave}`), e.message);
    });
    const emptyOci = join(work, 'empty-oci');
    mkdirSync(emptyOci);
    writeFileSync(join(emptyOci, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(emptyOci, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    await rejectsUnchanged(store.root, () => loadImages(store, emptyOci), (e) => {
      assert.equal(e.reason, 'no-images');
      assert.ok(e.message.includes(`no images in archive ${emptyOci}`), e.message);
    });
  });

  test('parseRepository() follows Docker\'s repository grammar', () => {
    for (const ok of ['a', 'abc', 'my/repo', 'my_repo', 'a__b', 'a-b', 'a---b', 'a.b/c', 'localhost/x', 'localhost:5000/x/y', 'reg.example.com/team/app', 'docker.io/library/alpine']) {
      assert.notEqual(parseRepository(ok), null, ok);
    }
    assert.equal(parseRepository('docker.io/library/alpine'), 'alpine');
    for (const bad of ['', 'BAD', 'Repo', 'repo:tag', 'repo@sha256:00', '-a', 'a-', 'a..b', 'a___b', 'a//b', '/a', 'a/', 'a b', `${'a'.repeat(256)}`]) {
      assert.equal(parseRepository(bad), null, bad);
    }
  });

  test('load --repository: an invalid name is EINVAL; a docker-save archive refuses it; a valid one tags OCI images', async (t) => {
    if (!requiresOverlay(t)) return;
    const oci = join(work, 'oci-bare');
    const { id } = ociLayout(oci, (await threeLayers()).slice(0, 1), '7');
    for (const repository of ['BAD', 'repo:tag', 'a..b']) {
      await rejectsUnchanged(store.root, () => loadImages(store, oci, { repository }), (e) => {
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.reason, 'invalid-reference');
      });
    }
    await rejectsUnchanged(store.root, () => loadImages(store, small.archive, { repository: 'fine' }), (e) => {
      assert.equal(e.code, 'EINVAL');
      assert.equal(e.reason, 'repository-not-applicable');
    });
    const r = await loadImages(store, oci, { repository: 'localhost:5000/team/app' });
    assert.deepEqual(r.images, [{ id, tags: ['localhost:5000/team/app:7'] }]);
    await removeImage(store, id);
  });

  test('a gzip- or zstd-compressed outer archive loads like the plain one; xz and bzip2 are refused clearly', async (t) => {
    if (!requiresOverlay(t)) return;
    const plain = readFileSync(small.archive);
    const gz = join(work, 'small.tar.gz');
    writeFileSync(gz, gzipSync(plain));
    const r = await loadImages(store, gz);
    assert.deepEqual(r.images, [{ id: small.id, tags: ['small:1'] }]);
    await removeImage(store, 'small:1');
    if (requiresCommand(t, 'zstd')) {
      const zst = join(work, 'small.tar.zst');
      assert.equal(spawnSync('zstd', ['-q', '-o', zst, small.archive]).status, 0);
      const z = await loadImages(store, zst);
      assert.deepEqual(z.images, [{ id: small.id, tags: ['small:1'] }]);
      await removeImage(store, 'small:1');
    }
    const cut = join(work, 'small-cut.tar.gz');
    writeFileSync(cut, gzipSync(plain).subarray(0, 200));
    await rejectsUnchanged(store.root, () => loadImages(store, cut), (e) => assert.equal(e.code, 'EINVAL'));
    for (const [name, magic] of [['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]], ['bzip2', [0x42, 0x5a, 0x68, 0x39]]] as const) {
      const f = join(work, `small.tar.${name}`);
      writeFileSync(f, Buffer.concat([Buffer.from(magic), Buffer.alloc(1024)]));
      await rejectsUnchanged(store.root, () => loadImages(store, f), (e) => {
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.reason, 'unsupported-compression');
        assert.ok(e.message.includes(`unsupported compression: ${name}`) && e.message.includes('decompress it first'), e.message);
      });
    }
    assert.deepEqual(readdirSync(store.paths.tmpDir), [], 'no scratch left');
  });

  test('a corrupt config.v2.json is skipped with a warning by listings, and rm by full id still removes it', async (t) => {
    if (!requiresOverlay(t)) return;
    await loadImages(store, small.archive);
    const good = await createContainer(store, 'good', 'small:1');
    const bad = await createContainer(store, 'bad', 'small:1');
    const file = store.paths.containerConfig(bad.id);
    writeFileSync(file, '{"ID": "trunc');
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const list = await store.containers();
      assert.deepEqual(list.map((c) => c.ID), [good.id]);
      assert.equal((await store.counts()).containers, 1);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      assert.ok(warnings.some((w) => w.includes(file)), `a warning names ${file}: ${JSON.stringify(warnings)}`);
      // other commands still work
      const c3 = await createContainer(store, 'third', 'small:1');
      await removeContainer(store, 'third');
      assert.equal(existsSync(store.paths.containerDir(c3.id)), false);
    } finally {
      process.off('warning', onWarning);
    }
    await assert.rejects(removeContainer(store, 'bad'), (e: unknown) => e instanceof OverlayError && e.reason === 'container-not-found');
    await removeContainer(store, bad.id);
    assert.equal(existsSync(store.paths.containerDir(bad.id)), false);
    assert.equal(await store.meta.readMount(bad.id), null);
    assert.equal(existsSync(store.diffDir(bad.mountId)), false);
    assert.equal(existsSync(store.diffDir(`${bad.mountId}-init`)), false);
    await removeContainer(store, good.id);
    await removeImage(store, 'small:1');
    assert.deepEqual(await store.counts(), { images: 0, layers: 0, containers: 0 });
    assert.deepEqual(driverLayers(store), []);
  });

  test('tagImage() returns the image id', async (t) => {
    if (!requiresOverlay(t)) return;
    await loadImages(store, small.archive);
    const id = await tagImage(store, 'small:1', 'again:2');
    assert.equal(id, small.id);
    assert.deepEqual(await store.tagsOf(small.id), ['again:2', 'small:1']);
    await removeImage(store, 'again:2');
    await removeImage(store, 'small:1');
  });
});

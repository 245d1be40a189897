/**
 * The overlay2 graphdriver: Docker's on-disk layout under `home` (= <data-root>/overlay2):
 * `<home>/<id>/{diff,link,lower,work,merged,committed}` and `<home>/l/<LINKID> -> ../<id>/diff`.
 *
 * Vocabulary: `id` (layer dir name), `parent` (id or null), `lowers` (top→bottom, as in `lower`),
 * `link` (26-char short id). Methods mirror Docker's graphdriver API (spec:
 * overlay2-driver-behaviour.md §7); differences are marked DIFFERS below.
 *
 * Lifecycle: init (probes, home, sweep of crash leftovers) → create/createReadWrite/createFromTar
 * → get/put (mount reference counting) → remove → cleanup (unmount everything).
 *
 * Mount references. Docker keeps refcounts in memory and, on first touch of a merged path after a
 * restart, adopts a live overlay mount there as one reference. This library is used by a CLI that
 * runs one process per command, so in-memory counts die with each process. We keep Docker's rule
 * and nothing more: within a process, get/put count; across processes a mounted `merged` (an overlay
 * mount point in /proc/self/mountinfo) counts as exactly one reference, so `get` in one process and
 * `put` in a later one unmounts, and a second `get` in another process reuses the mount. Counts are
 * not persisted: a persisted count goes stale when a process dies between mount and bookkeeping,
 * while the kernel's mount table cannot.
 */
import type { Writable } from 'node:stream';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rm, rmdir, stat, symlink, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { OverlayError, fromNodeError, hasCode, isNotFound } from '../errors.js';
import type { ApplyLayerOptions, ApplyLayerResult, Change, DiffLayerResult } from '../archive/types.js';
import * as archive from '../archive/index.js';
import { fsyncDir, writeFileAtomic } from '../fsutil/atomic.js';
import { isOverlayMountPoint, mountContaining, mountOverlay, recursiveUnmount, unmount, type MountMethod } from '../mount/index.js';
import { backingFs, dTypeNotSupportedMessage, probeDType, probeIndexParam, probeMetacopy, probeNativeDiff, probeOverlay, probeUserxattr } from '../probe/index.js';
import { renameat2, RENAME_NOREPLACE } from '../sys/libc.js';
import { LINK_DIR, MODE, STAGING_PREFIX, kernelWorkDir, layerDir, layerPaths, layerPathsIn, linkDir, linkPath, linkTarget, type LayerPaths } from './layout.js';
import { isLinkId, newLinkId } from './short-link.js';
import { lowerChain, lowerDirs, markCommitted, readLinkId, readLowerEntries } from './layer-files.js';
import { ensureRemoveAll, ignoreCodes, mkdirMode, pathExists, processAlive } from './fs-helpers.js';
import { parseDriverOptions, parseLayerStorageOpt } from './options.js';
import { openLayerEngine, type LayerEngineOptions } from './engine-view.js';
import type { OverlayEngine } from '../engine/index.js';

/** The archive functions the driver composes (replaceable for tests and fault injection). */
export interface ArchiveOps {
  applyLayer: typeof archive.applyLayer;
  writeLayerTar: typeof archive.writeLayerTar;
  writeTreeTar: typeof archive.writeTreeTar;
  findNativeDiffBlocker: typeof archive.findNativeDiffBlocker;
  exportChanges: typeof archive.exportChanges;
  changesDirs: typeof archive.changesDirs;
  overlayChanges: typeof archive.overlayChanges;
  directorySize: typeof archive.directorySize;
  changesSize: typeof archive.changesSize;
}

export interface DriverOptions {
  /** `overlay2.*` storage options from daemon.json (`overlay2.size=10G`). */
  storageOpts?: string[];
  /** How `get` provides a merged view: the kernel overlay mount (default) or the userspace engine. */
  mountMode?: 'kernel' | 'engine';
  /** Override archive functions (default: src/archive). */
  archive?: Partial<ArchiveOps>;
  /** Receives Docker's warnings/debug lines (default: ignored). */
  log?: (msg: string) => void;
}

export interface CreateOptions {
  /** Per-layer storage options (`size`), as `docker run --storage-opt`. */
  storageOpt?: Record<string, string>;
  mountLabel?: string;
}

/** What init found out about the backing filesystem and kernel. */
export interface DriverFeatures {
  backingFs: string;
  dType: boolean;
  metacopy: boolean;
  indexOff: boolean;
  userxattr: boolean;
}

/** Whether the xfs holding `path` enforces project quota (mounted `prjquota`/`pquota`; `pqnoenforce` only accounts, which Docker refuses too). */
function xfsProjectQuotaOn(path: string): boolean {
  const opts = (mountContaining(path)?.superOptions ?? '').split(',');
  return opts.some((o) => o === 'prjquota' || o === 'pquota');
}

/** chmod only when needed, so an unprivileged user (engine mode) can open a root-made store. */
async function chmodIfDiffers(path: string, mode: number): Promise<void> {
  if (((await stat(path)).mode & 0o7777) !== mode) await chmod(path, mode);
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

function checkId(id: string, op: string): void {
  if (id === '' || id.length > 255 || !ID_RE.test(id) || id === LINK_DIR) {
    throw new OverlayError('EINVAL', op, { layer: id, reason: 'invalid-layer-id' });
  }
}


export class Overlay2Driver {
  private readonly locks = new Map<string, Promise<void>>();
  private readonly refs = new Map<string, number>();
  private readonly inflight = new Map<string, { key: string; done: Promise<ApplyLayerResult> }>();
  private nativeDiff: Promise<boolean> | undefined;
  private readonly ops: ArchiveOps;
  private readonly log: (msg: string) => void;
  /** The method of the last kernel mount made by `get` (observability for tests and the CLI). */
  lastMountMethod: MountMethod | undefined;

  private constructor(readonly home: string, readonly options: DriverOptions, readonly features: DriverFeatures, private readonly quotaSize: number) {
    this.ops = { ...archive, ...options.archive };
    this.log = options.log ?? (() => undefined);
  }

  /**
   * Run the prerequisite checks (overlay mount, d_type, backing fs, …) and create `home` and `home/l`.
   * @throws EINVAL bad storage options; EOPNOTSUPP (reason overlay-not-supported | no-d-type |
   *   quota-not-supported) with Docker's text in the message.
   */
  static async init(home: string, options: DriverOptions = {}): Promise<Overlay2Driver> {
    home = resolve(home);
    const opts = parseDriverOptions(options.storageOpts ?? []);
    try {
      await mkdir(dirname(home), { recursive: true, mode: 0o710 }); // dockerd's data-root mode
    } catch (e) {
      throw fromNodeError(e, 'init', { path: dirname(home) });
    }
    let testdir = home;
    try {
      await stat(home);
    } catch (e) {
      if (!isNotFound(e)) throw fromNodeError(e, 'init', { path: home });
      testdir = dirname(home);
    }
    // Engine mode needs no kernel overlay (nor privilege): the mount probes are skipped and the
    // layers are read and written through the userspace engine (`openLayerEngine`).
    const engineOnly = options.mountMode === 'engine';
    const ovl = engineOnly ? { supported: true, reason: undefined } : await probeOverlay(testdir);
    if (!ovl.supported) {
      throw new OverlayError('EOPNOTSUPP', 'init', { path: home, reason: 'overlay-not-supported', detail: `driver not supported: ${ovl.reason ?? ''}` });
    }
    const fs = await backingFs(testdir);
    // An unprivileged engine-mode user may not be able to write a probe file into a root-made
    // store; the store's creator ran the check, so a refused probe counts as supported.
    const dt = await probeDType(testdir).catch((e: unknown) => {
      if (engineOnly && hasCode(e, 'EACCES', 'EPERM', 'EROFS')) return { supported: true };
      throw e;
    });
    if (!dt.supported) {
      throw new OverlayError('EOPNOTSUPP', 'init', { path: home, reason: 'no-d-type', detail: dTypeNotSupportedMessage('overlay2', fs.name) });
    }
    const ux = await probeUserxattr(testdir);
    const mc = engineOnly ? { supported: false } : await probeMetacopy(testdir, ux.supported);
    try {
      await mkdir(home, { mode: MODE.home }).catch((e: unknown) => {
        if (!hasCode(e, 'EEXIST')) throw e;
      });
      await chmodIfDiffers(home, MODE.home);
      await mkdir(linkDir(home), { mode: MODE.linkDir }).catch((e: unknown) => {
        if (!hasCode(e, 'EEXIST')) throw e;
      });
      await chmodIfDiffers(linkDir(home), MODE.linkDir);
    } catch (e) {
      throw fromNodeError(e, 'init', { path: home });
    }
    if (opts.quotaSize > 0) {
      // Docker's three outcomes: not xfs; xfs without project quota enforced (its quota control
      // then fails with ErrQuotaNotSupported); xfs with it, where Docker sets quotas and we cannot
      // (DIFFERS: project quota is not implemented here, so the option is refused, not ignored).
      const detail =
        fs.name !== 'xfs'
          ? `Storage Option overlay2.size only supported for backingFS XFS. Found ${fs.name}`
          : `Storage option overlay2.size not supported. Filesystem does not support Project Quota: ${
              xfsProjectQuotaOn(await realpath(testdir)) ? 'project quota is not implemented by this driver' : 'Filesystem does not support, or has not enabled quotas'
            }`;
      throw new OverlayError('EOPNOTSUPP', 'init', { path: home, reason: 'quota-not-supported', detail });
    }
    const features: DriverFeatures = { backingFs: fs.name, dType: true, metacopy: mc.supported, indexOff: await probeIndexParam(), userxattr: ux.supported };
    const d = new Overlay2Driver(home, options, features, opts.quotaSize);
    d.log(`backingFs=${fs.name}, projectQuotaSupported=false, usingMetacopy=${mc.supported}, indexOff="${features.indexOff ? 'index=off,' : ''}", userxattr="${ux.supported ? 'userxattr,' : ''}"`);
    d.sweptAtInit = await d.sweepStaging();
    return d;
  }

  // ---- locking ---------------------------------------------------------------------------------

  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.locks.set(id, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(id) === chained) this.locks.delete(id);
    }
  }

  // ---- crash leftovers ---------------------------------------------------------------------------

  /** What `init` swept (staging dirs of dead processes), for a caller that reports cleanup. */
  sweptAtInit: string[] = [];

  /**
   * Remove `.staging-<id>-<pid>-*` dirs whose process is gone (crash leftovers of createFromTar).
   * A staging dir of a live process (another CLI command running right now) is kept.
   * Returns the names removed.
   */
  async sweepStaging(): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.home);
    } catch (e) {
      throw fromNodeError(e, 'readdir', { path: this.home });
    }
    for (const name of names) {
      if (!name.startsWith(STAGING_PREFIX)) continue;
      const m = /-(\d+)-[^-]+$/.exec(name);
      const pid = m ? Number(m[1]) : NaN;
      // Live owners (this process included: another driver instance may be importing) keep theirs.
      if (Number.isInteger(pid) && processAlive(pid)) continue;
      await ensureRemoveAll(join(this.home, name));
      removed.push(name);
    }
    return removed;
  }

  /** Ids of the layer dirs under home (not `l/`, not staging dirs), sorted. For orphan collection by the layer store. */
  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.home);
    } catch (e) {
      throw fromNodeError(e, 'readdir', { path: this.home });
    }
    return names.filter((n) => n !== LINK_DIR && ID_RE.test(n)).sort();
  }

  /**
   * Repair `l/` (B36; Docker has no such routine, containers/storage does): re-create the symlink
   * of every layer whose `link` names a missing `l/` entry, and delete `l/` entries whose layer
   * diff no longer exists. Not run by init (it reads every layer); meant for an fsck/prune command.
   */
  async repairLinks(): Promise<{ recreated: string[]; removed: string[] }> {
    const recreated: string[] = [];
    const removed: string[] = [];
    for (const id of await this.list()) {
      let link: string;
      try {
        link = await readLinkId(this.home, id);
      } catch (e) {
        this.log(`repairLinks: layer ${id}: ${String(e)}`);
        continue;
      }
      const lp = linkPath(this.home, link);
      let target: string | undefined;
      try {
        target = await readlink(lp);
      } catch (e) {
        if (!hasCode(e, 'ENOENT', 'EINVAL')) throw fromNodeError(e, 'readlink', { path: lp });
      }
      if (target === linkTarget(id)) continue;
      await rm(lp, { force: true, recursive: true });
      await symlink(linkTarget(id), lp);
      recreated.push(link);
    }
    for (const name of await readdir(linkDir(this.home))) {
      const lp = linkPath(this.home, name);
      try {
        await stat(lp);
        continue;
      } catch (e) {
        if (!hasCode(e, 'ENOENT', 'ENOTDIR', 'ELOOP')) throw fromNodeError(e, 'stat', { path: lp });
      }
      await rm(lp, { force: true });
      removed.push(name);
    }
    return { recreated, removed };
  }

  // ---- create ------------------------------------------------------------------------------------

  /** A read-only (image) layer. DIFFERS: a failed create also removes the new `l/` link. */
  async create(id: string, parent: string | null, opts: CreateOptions = {}): Promise<void> {
    checkId(id, 'create');
    if (opts.storageOpt && 'size' in opts.storageOpt) {
      throw new OverlayError('EINVAL', 'create', { layer: id, reason: 'storage-opt-ro-layer', detail: '--storage-opt size is only supported for ReadWrite Layers' });
    }
    await this.createLayer(id, parent, opts);
  }

  /** A read-write (container) layer. */
  async createReadWrite(id: string, parent: string | null, opts: CreateOptions = {}): Promise<void> {
    checkId(id, 'createReadWrite');
    const storageOpt = { ...(opts.storageOpt ?? {}) };
    if ('size' in storageOpt) {
      throw new OverlayError('EOPNOTSUPP', 'createReadWrite', { layer: id, reason: 'quota-not-supported', detail: "--storage-opt is supported only for overlay over xfs with 'pquota' mount option" });
    }
    if (this.quotaSize > 0) storageOpt['size'] = String(this.quotaSize);
    await this.createLayer(id, parent, { ...opts, storageOpt });
  }

  private async createLayer(id: string, parent: string | null, opts: CreateOptions): Promise<void> {
    if (parent !== null) checkId(parent, 'create');
    const p = layerPaths(this.home, id);
    let created = false;
    let link: string | undefined;
    try {
      try {
        await mkdir(p.dir, { mode: MODE.layer });
        created = true;
      } catch (e) {
        if (!hasCode(e, 'EEXIST')) throw e;
      }
      await chmod(p.dir, MODE.layer);
      parseLayerStorageOpt(opts.storageOpt);
      await mkdirMode(p.diff, MODE.diff);
      link = newLinkId();
      await symlink(linkTarget(id), linkPath(this.home, link));
      await writeFileAtomic(p.link, link, MODE.link);
      if (parent === null) return;
      await mkdirMode(p.work, MODE.work);
      await markCommitted(this.home, parent, id);
      const lowers = await lowerChain(this.home, parent, id);
      await writeFileAtomic(p.lower, lowers.join(':'), MODE.lower);
    } catch (e) {
      if (link !== undefined) await unlink(linkPath(this.home, link)).catch(ignoreCodes('ENOENT'));
      if (created) await rm(p.dir, { recursive: true, force: true });
      throw fromNodeError(e, 'create', { layer: id });
    }
  }

  // ---- createFromTar ----------------------------------------------------------------------------

  /**
   * Create a read-only layer from a layer tar atomically: nothing named `<id>` is visible until the
   * whole tar applied; on any error nothing is left behind.
   *
   * The layer is built in `<home>/.staging-<id>-<pid>-<rand>/`, then renamed to `<home>/<id>` with
   * RENAME_NOREPLACE and only then linked into `l/`. Concurrent calls for the same id: in one
   * process a call with the same parent and tar joins the running extraction (one extraction, same
   * result); otherwise the first rename wins and the others fail with EEXIST (reason layer-exists)
   * after discarding their staging dir — across processes too.
   * @throws EEXIST (layer-exists), ENOENT (parent-not-found), EINVAL (chain-too-deep, hostile tar…)
   */
  async createFromTar(id: string, parent: string | null, tarFile: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
    checkId(id, 'createFromTar');
    if (parent !== null) checkId(parent, 'createFromTar');
    const key = `${parent ?? ''}\0${resolve(tarFile)}`;
    const running = this.inflight.get(id);
    if (running !== undefined) {
      if (running.key === key) return running.done;
      // Only wait for it to settle: its outcome belongs to its own caller.
      await running.done.then(
        () => undefined,
        () => undefined,
      );
    }
    const done = this.createFromTarOnce(id, parent, tarFile, opts);
    this.inflight.set(id, { key, done });
    try {
      return await done;
    } finally {
      if (this.inflight.get(id)?.done === done) this.inflight.delete(id);
    }
  }

  private async createFromTarOnce(id: string, parent: string | null, tarFile: string, opts: ApplyLayerOptions): Promise<ApplyLayerResult> {
    const target = layerDir(this.home, id);
    if (await pathExists(target)) throw new OverlayError('EEXIST', 'createFromTar', { path: target, layer: id, reason: 'layer-exists' });
    const lowers = parent === null ? null : await lowerChain(this.home, parent, id);
    let staging: string;
    try {
      staging = await mkdtemp(join(this.home, `${STAGING_PREFIX}${id}-${process.pid}-`));
    } catch (e) {
      throw fromNodeError(e, 'createFromTar', { path: this.home, layer: id });
    }
    const sp = layerPathsIn(staging);
    let renamed = false;
    let linked: string | undefined;
    try {
      await chmod(staging, MODE.layer);
      await mkdirMode(sp.diff, MODE.diff);
      const link = newLinkId();
      await writeFileAtomic(sp.link, link, MODE.link);
      if (lowers !== null) {
        await mkdirMode(sp.work, MODE.work);
        await writeFileAtomic(sp.lower, lowers.join(':'), MODE.lower);
      }
      const result = await this.ops.applyLayer(tarFile, sp.diff, { ...opts, userxattr: opts.userxattr ?? this.features.userxattr });
      await fsyncDir(sp.diff);
      if (parent !== null) await markCommitted(this.home, parent, id);
      try {
        renameat2(staging, target, RENAME_NOREPLACE);
      } catch (e) {
        if (hasCode(e, 'EEXIST', 'ENOTEMPTY')) throw new OverlayError('EEXIST', 'createFromTar', { path: target, layer: id, reason: 'layer-exists', cause: e });
        throw e;
      }
      renamed = true;
      await symlink(linkTarget(id), linkPath(this.home, link));
      linked = linkPath(this.home, link);
      await fsyncDir(this.home);
      return result;
    } catch (e) {
      // Nothing of this attempt may stay visible: the staging dir, or the renamed dir whose link failed.
      if (linked !== undefined) await rm(linked, { force: true });
      await ensureRemoveAll(renamed ? target : staging).catch((c: unknown) => this.log(`createFromTar cleanup of ${staging}: ${String(c)}`));
      throw fromNodeError(e, 'createFromTar', { layer: id });
    }
  }

  // ---- remove ------------------------------------------------------------------------------------

  /**
   * Remove the layer dir and its `l/` link; unknown ids succeed. Anything mounted below the layer
   * dir is unmounted first (Docker's EnsureRemoveAll). The parent's `committed` stays.
   */
  async remove(id: string): Promise<void> {
    if (id === '') throw new OverlayError('EINVAL', 'remove', { reason: 'empty-id', detail: 'refusing to remove the directories: id is empty' });
    checkId(id, 'remove');
    await this.withLock(id, async () => {
      const p = layerPaths(this.home, id);
      let link: string | undefined;
      try {
        link = (await readFile(p.link, 'utf8')).trim();
      } catch (e) {
        if (!hasCode(e, 'ENOENT', 'ENOTDIR', 'EISDIR')) this.log(`remove ${id}: reading link: ${String(e)}`);
      }
      if (link === '') this.log(`refusing to remove empty link for layer ${id}`);
      else if (link !== undefined && isLinkId(link)) await rm(linkPath(this.home, link), { force: true });
      this.refs.delete(p.merged);
      await ensureRemoveAll(p.dir);
    });
  }

  async exists(id: string): Promise<boolean> {
    if (id === '' || !ID_RE.test(id) || id === LINK_DIR) return false;
    return pathExists(layerDir(this.home, id));
  }

  // ---- get / put ---------------------------------------------------------------------------------

  /** The current reference count of a merged path, adopting a live mount as one reference. */
  private refCount(merged: string): number {
    const n = this.refs.get(merged);
    if (n !== undefined) return n;
    return isOverlayMountPoint(merged) ? 1 : 0;
  }

  /**
   * Mount (reference-counted) and return the merged path; base layers return their diff dir.
   * A layer with `committed` is mounted read-only (`lowerdir=<own diff>:<lowers>`).
   * @throws ENOENT unknown layer; EINVAL corrupt link/lower; the kernel's code with Docker's
   *   "error creating overlay mount to …" text.
   */
  async get(id: string, mountLabel = ''): Promise<string> {
    checkId(id, 'get');
    if (this.options.mountMode === 'engine') {
      throw new OverlayError('EOPNOTSUPP', 'get', { layer: id, reason: 'engine-mount-not-available', detail: 'the userspace engine has no mount here; use mountMode kernel' });
    }
    return this.withLock(id, async () => {
      const p = layerPaths(this.home, id);
      try {
        await stat(p.dir);
      } catch (e) {
        throw fromNodeError(e, 'get', { path: p.dir, layer: id });
      }
      const lowers = await readLowerEntries(this.home, id);
      if (lowers === null) return p.diff;
      const count = this.refCount(p.merged) + 1;
      this.refs.set(p.merged, count);
      if (count > 1) return p.merged;
      try {
        await this.mountLayer(p, lowers, mountLabel);
      } catch (e) {
        const left = (this.refs.get(p.merged) ?? 1) - 1;
        if (left <= 0) {
          this.refs.delete(p.merged);
          unmount(p.merged);
          await rmdir(p.merged).catch(ignoreCodes('ENOENT', 'ENOTEMPTY', 'EBUSY'));
        } else this.refs.set(p.merged, left);
        throw fromNodeError(e, 'get', { layer: id });
      }
      return p.merged;
    });
  }

  private async mountLayer(p: LayerPaths, lowers: string[], mountLabel: string): Promise<void> {
    let readonly: boolean;
    try {
      await stat(p.committed);
      readonly = true;
    } catch (e) {
      if (!isNotFound(e)) throw fromNodeError(e, 'stat', { path: p.committed });
      readonly = false;
    }
    const abs = lowers.map((l) => join(this.home, l));
    await mkdirMode(p.merged, MODE.merged);
    const common = { target: p.merged, indexOff: this.features.indexOff, userxattr: this.features.userxattr, mountLabel, relativeTo: this.home };
    this.lastMountMethod = readonly
      ? mountOverlay({ ...common, lowers: [p.diff, ...abs] })
      : mountOverlay({ ...common, lowers: abs, upper: p.diff, work: p.work });
    if (!readonly) {
      // The kernel creates work/work; Docker chowns it to the (remapped) root after every rw mount.
      await chown(kernelWorkDir(p), process.getuid?.() ?? 0, process.getgid?.() ?? 0).catch((e: unknown) => {
        if (!isNotFound(e)) throw fromNodeError(e, 'chown', { path: kernelWorkDir(p) });
      });
    }
  }

  /** Drop one reference; at zero, lazily unmount and rmdir `merged`. Never fails for unmounted layers. */
  async put(id: string): Promise<void> {
    checkId(id, 'put');
    await this.withLock(id, async () => {
      const p = layerPaths(this.home, id);
      try {
        await stat(p.lower);
      } catch (e) {
        if (hasCode(e, 'ENOENT', 'ENOTDIR')) return;
        throw fromNodeError(e, 'put', { path: p.lower, layer: id });
      }
      const left = this.refCount(p.merged) - 1;
      if (left > 0) {
        this.refs.set(p.merged, left);
        return;
      }
      this.refs.delete(p.merged);
      unmount(p.merged, true);
      await rmdir(p.merged).catch((e: unknown) => {
        if (!isNotFound(e)) this.log(`put ${id}: rmdir ${p.merged}: ${String(e)}`);
      });
    });
  }

  /**
   * The engine alternative to `get`: the layer's merged view through the userspace engine, over
   * the same dirs a kernel mount would use (no mount, no refcount: an engine holds no kernel
   * state, so there is nothing to `put`). Committed and base layers are read-only.
   */
  async getEngine(id: string, opts: LayerEngineOptions = {}): Promise<OverlayEngine> {
    checkId(id, 'getEngine');
    return openLayerEngine(this, id, opts);
  }

  /** In-process reference count of a layer's merged path (adoption included); for tests/CLI. */
  mountRefs(id: string): number {
    return this.refCount(layerPaths(this.home, id).merged);
  }

  // ---- status / metadata / cleanup ---------------------------------------------------------------

  /** Docker's Status() pairs, in Docker's order. */
  async status(): Promise<Array<[string, string]>> {
    return [
      ['Backing Filesystem', this.features.backingFs],
      ['Supports d_type', String(this.features.dType)],
      ['Using metacopy', String(this.features.metacopy)],
      ['Native Overlay Diff', String(await this.usesNativeDiff())],
      ['userxattr', String(this.features.userxattr)],
    ];
  }

  /** Docker's lazy, once-per-process native diff decision (§3.1). */
  usesNativeDiff(): Promise<boolean> {
    // The engine writes no redirects or metacopy uppers unless asked: the upper dir is the diff.
    if (this.options.mountMode === 'engine') return Promise.resolve(true);
    this.nativeDiff ??= probeNativeDiff(this.home, this.features.userxattr).then(
      (r) => {
        if (!r.supported) this.log(`Not using native diff for overlay2, this may cause degraded performance for building images: ${r.reason ?? ''}`);
        return r.supported;
      },
      (e: unknown) => {
        this.log(`Not using native diff for overlay2, this may cause degraded performance for building images: ${String(e)}`);
        return false;
      },
    );
    return this.nativeDiff;
  }

  /** WorkDir, MergedDir, UpperDir and (with a parent) LowerDir as real `<home>/<lower id>/diff` paths. */
  async metadata(id: string): Promise<Record<string, string>> {
    checkId(id, 'metadata');
    const p = layerPaths(this.home, id);
    try {
      await stat(p.dir);
    } catch (e) {
      throw fromNodeError(e, 'metadata', { path: p.dir, layer: id });
    }
    const md: Record<string, string> = { WorkDir: p.work, MergedDir: p.merged, UpperDir: p.diff };
    const lowers = await this.lowerDirs(id);
    if (lowers !== null) md['LowerDir'] = lowers.join(':');
    return md;
  }

  /** Real paths of the lowers (top→bottom), or null for a base layer. */
  async lowerDirs(id: string): Promise<string[] | null> {
    return lowerDirs(this.home, id);
  }

  /** Unmount everything under home (directories stay). */
  async cleanup(): Promise<void> {
    recursiveUnmount(this.home);
    this.refs.clear();
  }

  // ---- diff family ---------------------------------------------------------------------------------

  /** Docker's isParent: `parent` is the direct parent of `id` (null: `id` is a base layer). */
  private async isParent(id: string, parent: string | null): Promise<boolean> {
    let lowers: string[] | null;
    try {
      lowers = await this.lowerDirs(id);
    } catch (e) {
      this.log(`isParent ${id}: ${String(e)}`);
      return false;
    }
    if (parent === null) return lowers === null;
    const first = lowers?.[0];
    return first !== undefined && dirname(first) === layerDir(this.home, parent);
  }

  private async native(id: string, parent: string | null): Promise<boolean> {
    if (!(await this.usesNativeDiff()) || !(await this.isParent(id, parent))) return false;
    // A layer written with redirects or metacopy (the engine's redirectDir option, or a kernel
    // mounted with redirect_dir/metacopy elsewhere) is not a complete diff by itself.
    const blocker = await this.ops.findNativeDiffBlocker(layerPaths(this.home, id).diff, { userxattr: this.features.userxattr });
    if (blocker !== null) this.log(`layer ${id}: naive diff (${blocker.reason} at ${blocker.path})`);
    return blocker === null;
  }

  /** The layer tar of `id` against `parent` (native: its diff dir; naive: changes of the merged trees). */
  async diff(id: string, parent: string | null, out: Writable): Promise<DiffLayerResult> {
    checkId(id, 'diff');
    if (await this.native(id, parent)) return this.ops.writeLayerTar(layerPaths(this.home, id).diff, out, { userxattr: this.features.userxattr });
    // Without a parent Docker tars the whole tree in walk order (archive.Tar), not a change list.
    if (parent === null) return this.withMounted(id, null, (layerFs) => this.ops.writeTreeTar(layerFs, out));
    return this.withMounted(id, parent, async (layerFs, parentFs) => this.ops.exportChanges(layerFs, await this.ops.changesDirs(layerFs, parentFs), out));
  }

  /** `docker diff`: with the direct parent, computed from the upper dir; otherwise from mounted trees. */
  async changes(id: string, parent: string | null): Promise<Change[]> {
    checkId(id, 'changes');
    if (parent !== null && (await this.native(id, parent))) {
      return this.ops.overlayChanges(layerPaths(this.home, id).diff, (await this.lowerDirs(id)) ?? [], { userxattr: this.features.userxattr });
    }
    return this.withMounted(id, parent, (layerFs, parentFs) => this.ops.changesDirs(layerFs, parentFs));
  }

  /**
   * Apply an (uncompressed or compressed) layer tar into the diff dir of an existing layer.
   * DIFFERS: the naive path (AUFS semantics through a mount) is not implemented: EOPNOTSUPP.
   */
  async applyDiff(id: string, parent: string | null, tarFile: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
    checkId(id, 'applyDiff');
    if (!(await this.native(id, parent))) {
      throw new OverlayError('EOPNOTSUPP', 'applyDiff', { layer: id, reason: 'naive-apply-unsupported', detail: 'applyDiff needs native overlay diff and the direct parent' });
    }
    return this.ops.applyLayer(tarFile, layerPaths(this.home, id).diff, { ...opts, userxattr: opts.userxattr ?? this.features.userxattr });
  }

  async diffSize(id: string, parent: string | null): Promise<number> {
    checkId(id, 'diffSize');
    if (await this.native(id, parent)) return this.ops.directorySize(layerPaths(this.home, id).diff);
    return this.withMounted(id, parent, async (layerFs, parentFs) => this.ops.changesSize(layerFs, await this.ops.changesDirs(layerFs, parentFs)));
  }

  /** Docker's naive driver: hold mounts of `id` (and `parent`) for the duration of `fn`. */
  private async withMounted<T>(id: string, parent: string | null, fn: (layerFs: string, parentFs: string | null) => Promise<T>): Promise<T> {
    const layerFs = await this.get(id);
    try {
      if (parent === null) return await fn(layerFs, null);
      const parentFs = await this.get(parent);
      try {
        return await fn(layerFs, parentFs);
      } finally {
        await this.put(parent);
      }
    } finally {
      await this.put(id);
    }
  }
}


/**
 * ImageStore: images, layers and containers on top of the overlay2 driver, in Docker's data-root
 * layout (see layout.ts). Lifecycle: `ImageStore.open(root)` creates the skeleton and inits the
 * driver; `load` adds images (layers keyed by chainID, shared layers stored once); containers get
 * a Docker-style init layer plus an rw layer; `commit` turns a container's diff into a new layer
 * and image; `rm`/`rmi` remove them and the layers of their chain no longer referenced;
 * `cleanupOrphans` (prune) takes what interrupted operations left.
 *
 * Failure contract: load/commit/createContainer either complete or leave the data root as it was
 * (everything they created is removed in reverse order).
 *
 * Concurrency: the library takes no lock itself. Callers that may run in several processes on one
 * data root (the CLI: one command per process) must hold `withRootLock(root, 'exclusive', …)`
 * (src/fsutil/lock.ts) around every mutating call (load, commit, create/remove container, rmi,
 * tag, cleanupOrphans) and at least `'shared'` around reads; without it two processes can, e.g.,
 * both create a container of the same name or lose one of two concurrent tag writes.
 * Crash leftovers: scratch dirs (`tmp/<op>-<pid>-*`) and layerdb staging dirs carry the pid of
 * their process; `open` removes those of dead processes and never those of live ones.
 */
import { chmod, mkdtemp, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Overlay2Driver, layerPaths, type DriverOptions } from '../store/index.js';
import { OverlayError, fromNodeError, hasCode, isNotFound } from '../errors.js';
import { chainIds, digestHex } from './digest.js';
import type { JsonObject } from './json-types.js';
import { DATA_ROOT_MODE, DataRoot } from './layout.js';
import { Metadata, STAGING_PREFIX, type ContainerRecord, type LayerRecord } from './metadata.js';
import { formatTag, idPrefix, parseTagRef } from './reference.js';

export interface ImageInfo {
  id: string;
  tags: string[];
  created: string | null;
  /** Σ sizes of the image's layers. */
  size: number;
  layers: string[]; // chainIDs, bottom first
  diffIds: string[];
}

export interface StoreCounts { images: number; layers: number; containers: number }

export interface OpenOptions { driver?: DriverOptions }

const NO_SUCH_IMAGE = (ref: string): OverlayError =>
  new OverlayError('ENOENT', 'resolveImage', { reason: 'image-not-found', detail: `No such image: ${ref}` });

export class ImageStore {
  readonly paths: DataRoot;
  readonly meta: Metadata;

  private constructor(readonly root: string, readonly driver: Overlay2Driver) {
    this.paths = new DataRoot(root);
    this.meta = new Metadata(this.paths);
  }

  /**
   * Open (creating if needed) the data root `root`. The driver's prerequisite checks run first; when
   * they or anything else here fail, every dir this call created is removed again, so a failed open
   * leaves nothing new behind. Then scratch and layerdb staging dirs of dead processes are swept.
   * Library calls take no lock: see the file comment (`withRootLock`) for callers in several processes.
   * @throws EOPNOTSUPP (overlay-not-supported, no-d-type, …) or EINVAL from the driver's init.
   */
  static async open(root: string, opts: OpenOptions = {}): Promise<ImageStore> {
    const paths = new DataRoot(root);
    // Everything open may create (with the intermediate dirs mkdir -p makes), parents before
    // children; the existing ones are left alone.
    const made = new Set<string>([paths.root]);
    for (const d of [...paths.skeleton.map(([x]) => x), paths.driverHome, join(paths.driverHome, 'l')]) {
      const rel = relative(paths.root, d);
      if (rel === '') continue;
      let p = paths.root;
      for (const part of rel.split(sep)) made.add((p = join(p, part)));
    }
    const candidates = [...made];
    const existed = new Set<string>();
    for (const d of candidates) if (await exists(d)) existed.add(d);
    let store: ImageStore;
    try {
      const driver = await Overlay2Driver.init(paths.driverHome, opts.driver ?? {});
      await new Metadata(paths).init();
      // The driver made the root (with the process umask); give it Docker's mode as init would have.
      if (!existed.has(paths.root)) await chmod(paths.root, DATA_ROOT_MODE);
      store = new ImageStore(root, driver);
      const swept = await store.sweepDeadScratch();
      store.sweptAtOpen = { scratch: swept.scratch, staging: [...swept.staging, ...driver.sweptAtInit] };
    } catch (e) {
      for (const d of [...candidates].reverse()) {
        if (existed.has(d)) continue;
        // Only empty dirs: never delete content someone else put there meanwhile.
        await rmdir(d).catch((err: unknown) => {
          if (!hasCode(err, 'ENOENT', 'ENOTEMPTY', 'EEXIST')) process.emitWarning(`open rollback: ${(err as Error).message}`);
        });
      }
      throw fromNodeError(e, 'open', { path: root });
    }
    return store;
  }

  /**
   * A scratch dir `tmp/<prefix>-<pid>-XXXXXX` on the data root's filesystem; remove it when done.
   * The pid lets a later `open` tell a crash leftover (dead pid) from a dir in use (live pid).
   */
  async scratch(prefix: string): Promise<string> {
    return mkdtemp(join(this.paths.tmpDir, `${prefix}-${process.pid}-`));
  }

  /** Crash leftovers `open` already removed; `cleanupOrphans` reports them once, as its own. */
  private sweptAtOpen: { scratch: string[]; staging: string[] } = { scratch: [], staging: [] };

  /**
   * Scratch dirs under tmp/ and layerdb staging dirs, each with the pid its name carries (null for
   * names written before pids were recorded). `list` reads a dir (and decides what a failure means).
   */
  private async leftovers(list: (dir: string) => Promise<string[]>): Promise<Array<{ kind: 'scratch' | 'staging'; dir: string; name: string; pid: number | null }>> {
    const out: Array<{ kind: 'scratch' | 'staging'; dir: string; name: string; pid: number | null }> = [];
    for (const [kind, dir, ours] of [
      ['scratch', this.paths.tmpDir, (_n: string) => true],
      ['staging', this.paths.layerDb, (n: string) => n.startsWith(STAGING_PREFIX)],
    ] as const) {
      for (const name of await list(dir)) if (ours(name)) out.push({ kind, dir, name, pid: ownerPid(name) });
    }
    return out;
  }

  /**
   * Remove scratch dirs under tmp/ and layerdb staging dirs whose owning process is gone (a killed
   * load, save or commit). Dirs of live processes are kept: another command may be using them now.
   * Names without a pid (written before pids were recorded) are kept too; `cleanupOrphans` takes them.
   * Best effort (never throws: failures are warnings). Returns the names removed.
   */
  async sweepDeadScratch(): Promise<{ scratch: string[]; staging: string[] }> {
    const out = { scratch: [] as string[], staging: [] as string[] };
    const list = async (dir: string): Promise<string[]> => {
      try {
        return (await readdir(dir)).sort();
      } catch (e) {
        // Best effort: an unprivileged (engine-mode) reader cannot list root's 0700 dirs.
        if (!isNotFound(e) && !hasCode(e, 'EACCES', 'EPERM')) process.emitWarning(`scratch sweep: ${(e as Error).message}`);
        return [];
      }
    };
    for (const l of await this.leftovers(list)) {
      if (l.pid === null || processAlive(l.pid)) continue;
      try {
        await rm(join(l.dir, l.name), { recursive: true, force: true });
        out[l.kind].push(l.name);
      } catch (e) {
        // Another process may be sweeping the same leftover; a failed sweep must not fail open.
        process.emitWarning(`scratch sweep of ${join(l.dir, l.name)}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  async removeScratch(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  /** The layer's diff dir inside the driver home (Docker's overlay2 layout). */
  diffDir(cacheId: string): string {
    return layerPaths(this.driver.home, cacheId).diff;
  }

  // ---- images ----

  async config(id: string): Promise<{ bytes: Buffer; config: JsonObject }> {
    const bytes = await this.meta.readImageConfig(id);
    if (bytes === null) throw NO_SUCH_IMAGE(id);
    let config: unknown;
    try {
      config = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new OverlayError('EINVAL', 'config', { path: this.paths.imageConfig(digestHex(id)), reason: 'invalid-config', detail: 'image config is not valid JSON', cause: e });
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      throw new OverlayError('EINVAL', 'config', { path: this.paths.imageConfig(digestHex(id)), reason: 'invalid-config', detail: 'image config is not a JSON object' });
    }
    return { bytes, config: config as JsonObject };
  }

  static diffIdsOf(config: JsonObject): string[] {
    const rootfs = config['rootfs'] as JsonObject | undefined;
    const ids = rootfs?.['diff_ids'];
    return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [];
  }

  /** Resolve a tag (`repo[:tag]`), an image id or a unique id prefix to "sha256:<id>". */
  async resolveImage(ref: string): Promise<string> {
    const tags = await this.meta.readTags();
    const t = parseTagRef(ref);
    if (t !== null) {
      const id = tags.get(formatTag(t));
      if (id !== undefined) return id;
    }
    const hex = idPrefix(ref);
    if (hex !== null) {
      const ids = (await this.meta.listImageIds()).filter((id) => id.slice(7).startsWith(hex));
      if (ids.length === 1) return ids[0] as string;
      if (ids.length > 1) throw new OverlayError('EINVAL', 'resolveImage', { reason: 'ambiguous-reference', detail: `${ref} matches ${ids.length} images` });
    }
    // Docker names what it looked for: `No such image: busybox:latest` for `busybox`.
    throw NO_SUCH_IMAGE(t !== null && hex === null ? formatTag(t) : ref);
  }

  async tagsOf(id: string): Promise<string[]> {
    return [...(await this.meta.readTags()).entries()].filter(([, v]) => v === id).map(([k]) => k).sort();
  }

  async images(): Promise<ImageInfo[]> {
    const tags = await this.meta.readTags();
    const out: ImageInfo[] = [];
    for (const id of await this.meta.listImageIds()) {
      const { config } = await this.config(id);
      const diffIds = ImageStore.diffIdsOf(config);
      const chains = chainIds(diffIds);
      let size = 0;
      for (const c of chains) size += (await this.meta.readLayer(c))?.size ?? 0;
      out.push({
        id,
        tags: [...tags.entries()].filter(([, v]) => v === id).map(([k]) => k).sort(),
        created: typeof config['created'] === 'string' ? config['created'] : null,
        size,
        layers: chains,
        diffIds,
      });
    }
    return out;
  }

  async layers(): Promise<LayerRecord[]> {
    return this.meta.listLayers();
  }

  async containers(): Promise<ContainerRecord[]> {
    return this.meta.listContainers();
  }

  async counts(): Promise<StoreCounts> {
    return {
      images: (await this.meta.listImageIds()).length,
      layers: (await this.meta.listLayers()).length,
      containers: (await this.meta.listContainers()).length,
    };
  }

  /** `docker info`-like facts: the driver's Status pairs plus counts and the data root. */
  async info(): Promise<{ dataRoot: string; driver: 'overlay2'; driverStatus: Array<[string, string]> } & StoreCounts> {
    return { dataRoot: this.root, driver: 'overlay2', driverStatus: await this.driver.status(), ...(await this.counts()) };
  }

  /** The layer record of chainID `chain`, or a clear error. */
  async layer(chain: string): Promise<LayerRecord> {
    const r = await this.meta.readLayer(chain);
    if (r === null) throw new OverlayError('ENOENT', 'layer', { layer: chain, reason: 'layer-not-found' });
    return r;
  }

  /** Set `tag` → `id`; returns the id the tag pointed to before, if another. */
  async setTag(tag: string, id: string): Promise<string | undefined> {
    const tags = await this.meta.readTags();
    const old = tags.get(tag);
    tags.set(tag, id);
    await this.meta.writeTags(tags);
    return old !== id ? old : undefined;
  }

  /**
   * Remove the layers that nothing references any more: no image's chain, no container's parent
   * chain and no other layer (as its parent) includes them. `chains` (bottom first) narrows the
   * candidates to one chain: what a removal made unreferenced (`rmi`, `rm`), leaving layers that were
   * already unreferenced (a killed load's) to `cleanupOrphans`. Without it every layerdb entry is
   * a candidate. Children go before their parents. Returns the chainIDs removed.
   */
  async releaseLayers(chains?: readonly string[]): Promise<string[]> {
    const used = new Set<string>();
    for (const id of await this.meta.listImageIds()) {
      let config: JsonObject;
      try {
        ({ config } = await this.config(id));
      } catch (e) {
        // An unreadable config hides which layers it uses: release nothing rather than guess.
        process.emitWarning(`not releasing layers: ${(e as Error).message}`);
        return [];
      }
      for (const c of chainIds(ImageStore.diffIdsOf(config))) used.add(c);
    }
    for (const m of await this.meta.listMounts()) {
      // A container pins its parent chain and everything below it.
      let p = m.parent;
      while (p !== null && !used.has(p)) {
        used.add(p);
        p = (await this.meta.readLayer(p))?.parent ?? null;
      }
    }
    // A layer is the lower of its children: count them, so no parent goes while a child stays.
    const children = new Map<string, number>();
    for (const l of await this.meta.listLayers()) {
      if (l.parent !== null) children.set(l.parent, (children.get(l.parent) ?? 0) + 1);
    }
    const candidates = chains !== undefined ? [...chains].reverse() : await this.layersTopDown();
    const removed: string[] = [];
    for (const chain of candidates) {
      if (used.has(chain) || (children.get(chain) ?? 0) > 0) continue;
      const rec = await this.meta.readLayer(chain);
      if (rec === null) continue;
      await this.meta.removeLayer(chain);
      await this.driver.remove(rec.cacheId);
      if (rec.parent !== null) children.set(rec.parent, (children.get(rec.parent) ?? 1) - 1);
      removed.push(chain);
    }
    return removed;
  }

  /** The chain ending in layer `top`, bottom first (as far as the layerdb has it). */
  async chainOf(top: string | null): Promise<string[]> {
    const out: string[] = [];
    for (let p = top; p !== null && !out.includes(p); p = (await this.meta.readLayer(p))?.parent ?? null) out.unshift(p);
    return out;
  }

  /** Every layerdb chainID, deepest first (a child always before its parent). */
  private async layersTopDown(): Promise<string[]> {
    const all = await this.meta.listLayers();
    const parent = new Map(all.map((l) => [l.chainId, l.parent]));
    const depth = (c: string): number => {
      let d = 0;
      for (let p = parent.get(c) ?? null; p !== null && d <= all.length; p = parent.get(p) ?? null) d++;
      return d;
    };
    return all.map((l) => ({ c: l.chainId, d: depth(l.chainId) })).sort((a, b) => b.d - a.d || (a.c < b.c ? -1 : 1)).map((x) => x.c);
  }

  /**
   * Remove what an interrupted operation (a crash, a kill) can leave behind: scratch dirs under
   * tmp/, layerdb staging dirs, layerdb layers that no image, container or other layer references
   * (a load killed after some of its layers were recorded; with their driver dirs), and driver
   * layers that no layerdb entry or container references (a load or commit that died between
   * createFromTar and its layerdb write).
   * A scratch or staging dir whose pid is a live process (this one included) is never removed, even
   * by a caller holding the exclusive lock: a library user may work on the store without the lock.
   * Such dirs are listed in `inUse` (paths relative to the root), and while there is one, no layer
   * is removed either (a running load's layers are unreferenced until its image is written).
   * Dirs without a pid are removed. Returns what was removed: `chains` are layerdb layers
   * (chainIDs), `layers` driver dirs.
   */
  async cleanupOrphans(): Promise<{ scratch: string[]; staging: string[]; chains: string[]; layers: string[]; inUse: string[] }> {
    const out = { scratch: [] as string[], staging: [] as string[], chains: [] as string[], layers: [] as string[], inUse: [] as string[] };
    const list = async (dir: string): Promise<string[]> => {
      try {
        return (await readdir(dir)).sort();
      } catch (e) {
        throw fromNodeError(e, 'cleanupOrphans', { path: dir });
      }
    };
    for (const l of await this.leftovers(list)) {
      if (l.pid !== null && processAlive(l.pid)) {
        out.inUse.push(relative(this.root, join(l.dir, l.name)));
        continue;
      }
      await rm(join(l.dir, l.name), { recursive: true, force: true });
      out[l.kind].push(l.name);
    }
    out.scratch.unshift(...this.sweptAtOpen.scratch);
    out.staging.unshift(...this.sweptAtOpen.staging);
    this.sweptAtOpen = { scratch: [], staging: [] };
    out.inUse.sort();
    if (out.inUse.length > 0) return out;
    out.chains = await this.releaseLayers();
    const referenced = new Set<string>();
    for (const l of await this.meta.listLayers()) referenced.add(l.cacheId);
    for (const m of await this.meta.listMounts()) {
      referenced.add(m.mountId);
      if (m.initId !== null) referenced.add(m.initId);
    }
    // Our ids: 64 hex, or 64 hex + "-init". Anything else in the driver home is not ours to judge.
    for (const n of await list(this.driver.home)) {
      if (!/^[0-9a-f]{64}(-init)?$/.test(n) || referenced.has(n)) continue;
      await this.driver.remove(n);
      out.layers.push(n);
    }
    return out;
  }

  static shortId(id: string): string {
    return (id.startsWith('sha256:') ? digestHex(id) : id).slice(0, 12);
  }
}

/** Whether `path` exists; an error other than "not there" (EACCES for an unprivileged reader) counts as existing, so open never removes it. */
async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    return !(isNotFound(e) || hasCode(e, 'ENOTDIR'));
  }
}

/** The pid in a scratch/staging name `<prefix>-<pid>-<random>`, or null (no pid recorded). */
export function ownerPid(name: string): number | null {
  const m = /-([1-9][0-9]{0,9})-[0-9A-Za-z]+$/.exec(name);
  const pid = m === null ? NaN : Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 && pid <= 0x3fffffff ? pid : null;
}

/** Whether process `pid` exists (EPERM: it exists, owned by someone else). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return !hasCode(e, 'ESRCH');
  }
}

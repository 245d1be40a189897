/**
 * ImageStore: images, layers and containers on top of the overlay2 driver, in Docker's data-root
 * layout (see layout.ts). Lifecycle: `ImageStore.open(root)` creates the skeleton and inits the
 * driver; `load` adds images (layers keyed by chainID, shared layers stored once); containers get
 * a Docker-style init layer plus an rw layer; `commit` turns a container's diff into a new layer
 * and image; `rm`/`rmi` remove them and every layer no longer referenced.
 *
 * Failure contract: load/commit/createContainer either complete or leave the data root as it was
 * (everything they created is removed in reverse order). Not safe for concurrent writers: the CLI
 * runs one operation per process.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Overlay2Driver, layerPaths, type DriverOptions } from '../store/index.js';
import { OverlayError, fromNodeError } from '../errors.js';
import { chainIds, digestHex } from './digest.js';
import type { JsonObject } from './json-types.js';
import { DataRoot } from './layout.js';
import { Metadata, type ContainerRecord, type LayerRecord } from './metadata.js';
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

  static async open(root: string, opts: OpenOptions = {}): Promise<ImageStore> {
    const paths = new DataRoot(root);
    await new Metadata(paths).init();
    const driver = await Overlay2Driver.init(paths.driverHome, opts.driver ?? {});
    return new ImageStore(root, driver);
  }

  /** A scratch dir on the data root's filesystem; remove it when done. */
  async scratch(prefix: string): Promise<string> {
    return mkdtemp(join(this.paths.tmpDir, `${prefix}-`));
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
    return { bytes, config: JSON.parse(bytes.toString('utf8')) as JsonObject };
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
    throw NO_SUCH_IMAGE(ref);
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
   * Remove the layers of `chains` (bottom first) that nothing references any more: no image's
   * chain and no container's parent chain includes them. Top-down, so children go first.
   */
  async releaseLayers(chains: readonly string[]): Promise<string[]> {
    const used = new Set<string>();
    for (const id of await this.meta.listImageIds()) {
      const { config } = await this.config(id);
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
    const removed: string[] = [];
    for (const chain of [...chains].reverse()) {
      if (used.has(chain)) continue;
      const rec = await this.meta.readLayer(chain);
      if (rec === null) continue;
      await this.meta.removeLayer(chain);
      await this.driver.remove(rec.cacheId);
      removed.push(chain);
    }
    return removed;
  }

  /**
   * Remove what an interrupted operation (a crash, a kill) can leave behind: scratch dirs under
   * tmp/, layerdb staging dirs, and driver layers that no layerdb entry or container references
   * (a load or commit that died between createFromTar and its layerdb write). Only safe when no
   * other process is using the store. Returns what was removed.
   */
  async cleanupOrphans(): Promise<{ scratch: string[]; staging: string[]; layers: string[] }> {
    const out = { scratch: [] as string[], staging: [] as string[], layers: [] as string[] };
    const list = async (dir: string): Promise<string[]> => {
      try {
        return (await readdir(dir)).sort();
      } catch (e) {
        throw fromNodeError(e, 'cleanupOrphans', { path: dir });
      }
    };
    for (const n of await list(this.paths.tmpDir)) {
      await rm(join(this.paths.tmpDir, n), { recursive: true, force: true });
      out.scratch.push(n);
    }
    for (const n of await list(this.paths.layerDb)) {
      if (!n.startsWith('.staging-')) continue;
      await rm(join(this.paths.layerDb, n), { recursive: true, force: true });
      out.staging.push(n);
    }
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

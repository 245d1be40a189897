/**
 * The metadata files under <root>/image/overlay2 and <root>/containers, in Docker's layout and
 * encodings (layerdb values without newline; repositories.json as Go writes it). Every write is
 * atomic (temp + fsync + rename); a layerdb entry appears as a whole directory via rename.
 */
import { chmod, mkdir, readFile, readdir, rename, rm, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OverlayError, fromNodeError, isNotFound } from '../errors.js';
import { digestHex, isHex64 } from './digest.js';
import { randomBytes } from 'node:crypto';
import { fsyncDir, writeFileAtomic } from '../fsutil/atomic.js';
import { TAR_SPLIT_FILE, type DataRoot } from './layout.js';

/** Prefix of layerdb staging dirs: `.staging-<chain-hex>-<pid>-<random>` (pid: crash-leftover sweep). */
export const STAGING_PREFIX = '.staging-';

export interface LayerRecord {
  chainId: string;
  diffId: string;
  /** The driver's layer id (dir name under overlay2/). */
  cacheId: string;
  /** chainID of the parent layer, or null for a base layer. */
  parent: string | null;
  /** Size of the layer's content as the driver counts it. */
  size: number;
}

export interface MountRecord { containerId: string; mountId: string; initId: string | null; parent: string | null }

export interface ContainerRecord {
  ID: string;
  Name: string; // "/name" as Docker stores it
  Image: string; // "sha256:<id>"
  ImageRef: string; // what the user asked for
  Created: string;
  Driver: 'overlay2';
  Config: Record<string, unknown>;
}

async function readOpt(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return null;
    throw fromNodeError(e, 'readMetadata', { path });
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    if (isNotFound(e)) return [];
    throw fromNodeError(e, 'readdir', { path: dir });
  }
}

/** Corrupt container records already warned about in this process. */
const warned = new Set<string>();

export class Metadata {
  constructor(readonly paths: DataRoot) {}

  async init(): Promise<void> {
    for (const [d, mode] of this.paths.skeleton) {
      // Modes only for dirs made here; an existing data root keeps its modes.
      if ((await mkdir(d, { recursive: true, mode })) !== undefined) await chmod(d, mode);
    }
  }

  // ---- layerdb ----

  async readLayer(chainId: string): Promise<LayerRecord | null> {
    const dir = this.paths.layerDir(digestHex(chainId, 'chainID'));
    const cacheId = await readOpt(join(dir, 'cache-id'));
    if (cacheId === null) return null;
    const diffId = (await readOpt(join(dir, 'diff'))) ?? '';
    const parent = await readOpt(join(dir, 'parent'));
    const size = Number((await readOpt(join(dir, 'size'))) ?? '0');
    return { chainId, diffId: diffId.trim(), cacheId: cacheId.trim(), parent: parent === null ? null : parent.trim(), size };
  }

  async listLayers(): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (const name of await listDir(this.paths.layerDb)) {
      if (!isHex64(name)) continue;
      const r = await this.readLayer(`sha256:${name}`);
      if (r !== null) out.push(r);
    }
    return out;
  }

  tarSplitPath(chainId: string): string {
    return join(this.paths.layerDir(digestHex(chainId)), TAR_SPLIT_FILE);
  }

  /** Create the layerdb entry atomically (a staging dir renamed into place); moves `tarSplit` in. */
  async writeLayer(rec: LayerRecord, tarSplit: string | null): Promise<void> {
    const hex = digestHex(rec.chainId, 'chainID');
    const staging = join(this.paths.layerDb, `${STAGING_PREFIX}${hex}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(staging, { mode: 0o700 });
    try {
      await writeFileAtomic(join(staging, 'cache-id'), rec.cacheId, 0o644);
      await writeFileAtomic(join(staging, 'diff'), rec.diffId, 0o644);
      if (rec.parent !== null) await writeFileAtomic(join(staging, 'parent'), rec.parent, 0o644);
      await writeFileAtomic(join(staging, 'size'), String(rec.size), 0o644);
      if (tarSplit !== null) {
        await rename(tarSplit, join(staging, TAR_SPLIT_FILE)).catch(async (e: unknown) => {
          if ((e as { code?: string }).code !== 'EXDEV') throw e;
          await copyFile(tarSplit, join(staging, TAR_SPLIT_FILE));
        });
      }
      await fsyncDir(staging);
      await rename(staging, this.paths.layerDir(hex));
      await fsyncDir(this.paths.layerDb);
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw fromNodeError(e, 'writeLayer', { path: this.paths.layerDir(hex), layer: rec.chainId });
    }
  }

  async removeLayer(chainId: string): Promise<void> {
    const dir = this.paths.layerDir(digestHex(chainId));
    // Rename away first so a crash never leaves a half-deleted entry that looks valid.
    const trash = join(this.paths.tmpDir, `rm-layer-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await rename(dir, trash);
    } catch (e) {
      if (isNotFound(e)) return;
      throw fromNodeError(e, 'removeLayer', { path: dir });
    }
    await rm(trash, { recursive: true, force: true });
  }

  // ---- mounts (container rw layers) ----

  async writeMount(m: MountRecord): Promise<void> {
    const dir = this.paths.mountDir(m.containerId);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(join(dir, 'mount-id'), m.mountId, 0o644);
    if (m.initId !== null) await writeFileAtomic(join(dir, 'init-id'), m.initId, 0o644);
    if (m.parent !== null) await writeFileAtomic(join(dir, 'parent'), m.parent, 0o644);
  }

  async readMount(containerId: string): Promise<MountRecord | null> {
    const dir = this.paths.mountDir(containerId);
    const mountId = await readOpt(join(dir, 'mount-id'));
    if (mountId === null) return null;
    const initId = await readOpt(join(dir, 'init-id'));
    const parent = await readOpt(join(dir, 'parent'));
    return { containerId, mountId: mountId.trim(), initId: initId?.trim() ?? null, parent: parent?.trim() ?? null };
  }

  async listMounts(): Promise<MountRecord[]> {
    const out: MountRecord[] = [];
    for (const id of await listDir(this.paths.mountsDb)) {
      const m = await this.readMount(id);
      if (m !== null) out.push(m);
    }
    return out;
  }

  async removeMount(containerId: string): Promise<void> {
    await rm(this.paths.mountDir(containerId), { recursive: true, force: true });
  }

  // ---- imagedb ----

  async writeImageConfig(id: string, bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(this.paths.imageConfig(digestHex(id, 'image ID')), bytes, 0o600);
  }

  async readImageConfig(id: string): Promise<Buffer | null> {
    try {
      return await readFile(this.paths.imageConfig(digestHex(id)));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw fromNodeError(e, 'readImageConfig', { path: this.paths.imageConfig(digestHex(id)) });
    }
  }

  async listImageIds(): Promise<string[]> {
    return (await listDir(this.paths.imageContent)).filter(isHex64).map((h) => `sha256:${h}`);
  }

  async removeImage(id: string): Promise<void> {
    const hex = digestHex(id);
    await rm(this.paths.imageConfig(hex), { force: true });
    await rm(this.paths.imageMeta(hex), { recursive: true, force: true });
  }

  async setImageParent(id: string, parent: string): Promise<void> {
    const dir = this.paths.imageMeta(digestHex(id));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(dir, 'parent'), parent, 0o644);
  }

  async imageParent(id: string): Promise<string | null> {
    return (await readOpt(join(this.paths.imageMeta(digestHex(id)), 'parent')))?.trim() ?? null;
  }

  // ---- repositories.json: {"Repositories":{"repo":{"repo:tag":"sha256:…"}}} ----

  /** tag ("repo:tag") → image id. */
  async readTags(): Promise<Map<string, string>> {
    const text = await readOpt(this.paths.repositoriesFile);
    const out = new Map<string, string>();
    if (text === null) return out;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new OverlayError('EINVAL', 'readTags', { path: this.paths.repositoriesFile, reason: 'invalid-json', cause: e });
    }
    const repos = (v as { Repositories?: Record<string, Record<string, string>> }).Repositories ?? {};
    for (const refs of Object.values(repos)) for (const [ref, id] of Object.entries(refs)) out.set(ref, id);
    return out;
  }

  async writeTags(tags: Map<string, string>): Promise<void> {
    const repos: Record<string, Record<string, string>> = {};
    for (const ref of [...tags.keys()].sort()) {
      const repo = ref.slice(0, ref.lastIndexOf(':'));
      (repos[repo] ??= {})[ref] = tags.get(ref) as string;
    }
    const sorted: Record<string, Record<string, string>> = {};
    for (const k of Object.keys(repos).sort()) sorted[k] = repos[k] as Record<string, string>;
    await writeFileAtomic(this.paths.repositoriesFile, JSON.stringify({ Repositories: sorted }), 0o600);
  }

  // ---- containers ----

  async writeContainer(c: ContainerRecord): Promise<void> {
    await mkdir(this.paths.containerDir(c.ID), { recursive: true, mode: 0o710 });
    await writeFileAtomic(this.paths.containerConfig(c.ID), JSON.stringify(c), 0o600);
  }

  /**
   * The container records. One that cannot be read or parsed (corrupt, truncated, unreadable) is
   * skipped with a warning naming its file (once per file and process) rather than failing every
   * listing; `removeContainer` by full id still removes such a container.
   */
  async listContainers(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const id of await listDir(this.paths.containersDir)) {
      const file = this.paths.containerConfig(id);
      try {
        const rec = await this.readContainer(id);
        if (rec !== null) out.push(rec);
      } catch (e) {
        if (!warned.has(file)) {
          warned.add(file);
          process.emitWarning(`skipping unreadable container record ${file}: ${(e as Error).message}`, { code: 'OVERLAY2_CORRUPT_CONTAINER' });
        }
      }
    }
    return out;
  }

  /**
   * The record of container `id`, or null when it has none.
   * @throws EINVAL (reason invalid-container-record) when the file is not a valid record; the read's code otherwise.
   */
  async readContainer(id: string): Promise<ContainerRecord | null> {
    const file = this.paths.containerConfig(id);
    const text = await readOpt(file);
    if (text === null) return null;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new OverlayError('EINVAL', 'readContainer', { path: file, reason: 'invalid-container-record', detail: 'not valid JSON', cause: e });
    }
    const r = v as Partial<ContainerRecord> | null;
    if (r === null || typeof r !== 'object' || Array.isArray(r) || typeof r.ID !== 'string' || typeof r.Name !== 'string' || typeof r.Image !== 'string') {
      throw new OverlayError('EINVAL', 'readContainer', { path: file, reason: 'invalid-container-record', detail: 'lacks ID, Name or Image' });
    }
    return r as ContainerRecord;
  }

  async removeContainer(id: string): Promise<void> {
    await rm(this.paths.containerDir(id), { recursive: true, force: true });
  }
}

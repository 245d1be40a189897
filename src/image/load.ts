/**
 * `load`: a docker-save archive or an OCI image layout into the store.
 *
 * Order (so that a failure leaves the store as it was):
 *  1. open the input (a tar is extracted to <root>/tmp) and plan: every blob digest, config digest
 *     and uncompressed layer diffID checked before anything is created;
 *  2. per layer, bottom first: reuse the chainID if present, else `driver.createFromTar` under a
 *     fresh random cache id, check the diffID it computed, then write the layerdb entry;
 *  3. image configs (exact bytes), then tags (repositories.json) in one atomic write.
 * Any error undoes steps 2–3 in reverse (configs, layerdb entries, driver layers).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openDecompressed } from '../archive/compression.js';
import { OverlayError, fromNodeError, pathOf } from '../errors.js';
import { chainIds, digestHex, layerDepthError, randomId } from './digest.js';
import { planLoad, type PlannedImage } from './load-plan.js';
import { openSource } from './source.js';
import { requireRepository } from './reference.js';
import type { ImageStore } from './store.js';

export interface LoadOptions {
  /**
   * Repository for OCI images whose `org.opencontainers.image.ref.name` is a bare tag (skopeo
   * `oci:DIR:1`): they are tagged `repository:<ref.name>`. Must be a valid repository name (Docker's
   * reference grammar, no tag) or load fails with EINVAL (invalid-reference). OCI layouts only: a
   * docker-save archive (manifest.json) is refused with EINVAL (repository-not-applicable).
   */
  repository?: string;
}

export interface LoadResult {
  images: Array<{ id: string; tags: string[] }>;
  layersCreated: string[]; // chainIDs
  layersReused: string[];
  /** Docker's lines: "Loaded image: edge:1", "Loaded image ID: sha256:…", tag moves. */
  messages: string[];
}

type Undo = () => Promise<void>;

/**
 * `docker load` of `input`: a docker-save archive or OCI image layout, as a tar (plain, or gzip/zstd
 * compressed as a whole: decompressed to scratch first; xz/bzip2 are refused) or a directory.
 * Mutates the store: callers in several processes must hold `withRootLock(root, 'exclusive', …)`.
 * @throws EINVAL (invalid-reference, repository-not-applicable, no-images, unsupported-compression,
 *   archive-truncated, digest-mismatch, diffid-mismatch, …); the data root is then unchanged.
 */
export async function loadImages(store: ImageStore, input: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const repository = opts.repository === undefined ? undefined : requireRepository(opts.repository, 'load');
  const scratch = await store.scratch('load');
  const undo: Undo[] = [];
  const result: LoadResult = { images: [], layersCreated: [], layersReused: [], messages: [] };
  try {
    const src = await openSource(input, join(scratch, 'archive'));
    try {
      const plan = await planLoad(src, repository);
      // Docker refuses the 126th layer while registering; refusing before the first keeps the store as it was.
      for (const img of plan) {
        const tooDeep = layerDepthError('load', img.layers.length - 1, `image ${img.tags[0] ?? img.id} has ${img.layers.length} layers`);
        if (tooDeep !== null) throw tooDeep;
      }
      for (const img of plan) await loadOne(store, img, scratch, undo, result);
      // Tags last, in one write.
      const tags = await store.meta.readTags();
      for (const img of plan) {
        for (const t of img.tags) {
          const old = tags.get(t);
          if (old !== undefined && old !== img.id) {
            result.messages.push(`The image ${t} already exists, renaming the old one with ID ${old} to empty string`);
          }
          tags.set(t, img.id);
        }
        result.images.push({ id: img.id, tags: img.tags });
        if (img.tags.length === 0) result.messages.push(`Loaded image ID: ${img.id}`);
        for (const t of img.tags) result.messages.push(`Loaded image: ${t}`);
      }
      await store.meta.writeTags(tags);
    } finally {
      await src.close();
    }
    return result;
  } catch (e) {
    for (const u of undo.reverse()) {
      await u().catch((err: unknown) => {
        process.emitWarning(`load rollback step failed: ${(err as Error).message}`);
      });
    }
    // An error from inside the scratch (or the store) names that path; the input is then the detail.
    const at = pathOf(e);
    throw fromNodeError(e, 'load', { path: at ?? input, detail: at !== undefined && at !== input ? `loading ${input}` : undefined });
  } finally {
    await store.removeScratch(scratch);
  }
}

async function loadOne(store: ImageStore, img: PlannedImage, scratch: string, undo: Undo[], result: LoadResult): Promise<void> {
  const chains = chainIds(img.layers.map((l) => l.diffId));
  let parent: { chainId: string; cacheId: string } | null = null;
  for (const [i, layer] of img.layers.entries()) {
    const chainId = chains[i] as string;
    const existing = await store.meta.readLayer(chainId);
    if (existing !== null) {
      // Docker skips a layer whose chain exists without reading it; a compressed blob's diffID is
      // then never checked. Check it anyway, so a corrupt archive never loads (plain blobs were
      // checked while planning).
      if (layer.compression !== 'none') {
        const actual = await uncompressedDigest(layer.file, layer.name);
        if (actual !== layer.diffId) {
          throw new OverlayError('EINVAL', 'load', {
            layer: layer.name,
            reason: 'diffid-mismatch',
            detail: `layer ${i} ${layer.name}: diffID ${actual} does not match rootfs.diff_ids[${i}] ${layer.diffId}`,
          });
        }
      }
      if (!result.layersCreated.includes(chainId) && !result.layersReused.includes(chainId)) result.layersReused.push(chainId);
      parent = { chainId, cacheId: existing.cacheId };
      continue;
    }
    const cacheId = randomId();
    const tarSplit = join(scratch, `tar-split-${digestHex(chainId)}`);
    const applied = await store.driver.createFromTar(cacheId, parent?.cacheId ?? null, layer.file, {
      tarSplitPath: tarSplit,
      label: layer.name,
    });
    undo.push(() => store.driver.remove(cacheId));
    if (applied.diffId !== layer.diffId) {
      throw new OverlayError('EINVAL', 'load', {
        layer: layer.name,
        reason: 'diffid-mismatch',
        detail: `layer ${i} ${layer.name}: diffID ${applied.diffId} does not match rootfs.diff_ids[${i}] ${layer.diffId}`,
      });
    }
    await store.meta.writeLayer({ chainId, diffId: layer.diffId, cacheId, parent: parent?.chainId ?? null, size: applied.size }, tarSplit);
    undo.push(() => store.meta.removeLayer(chainId));
    result.layersCreated.push(chainId);
    parent = { chainId, cacheId };
  }
  if ((await store.meta.readImageConfig(img.id)) === null) {
    await store.meta.writeImageConfig(img.id, img.configBytes);
    undo.push(() => store.meta.removeImage(img.id));
  }
}

/** "sha256:<hex>" of the decompressed bytes of a layer blob. */
async function uncompressedDigest(file: string, label: string): Promise<string> {
  const h = createHash('sha256');
  const { stream } = await openDecompressed(file);
  try {
    await pipeline(stream, h);
  } catch (e) {
    throw new OverlayError('EINVAL', 'load', { path: label, reason: 'layer-decompress-failed', detail: `cannot decompress ${label}: ${(e as Error).message}`, cause: e });
  }
  return `sha256:${h.digest('hex')}`;
}

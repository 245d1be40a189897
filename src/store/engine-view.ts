/**
 * The store handing out the userspace engine instead of a kernel mount: the same layer dirs
 * (`lowers` from the `lower` file, `diff` as upper, `work`), so a layer changed through the engine
 * diffs and commits exactly like one changed through the kernel mount. No mount, no privilege.
 */
import { stat } from 'node:fs/promises';
import { OverlayEngine } from '../engine/index.js';
import { fromNodeError } from '../errors.js';
import type { Overlay2Driver } from './driver.js';
import { layerPaths } from './layout.js';

export interface LayerEngineOptions {
  /** Refuse writes (EROFS) even for a read-write layer. */
  readonly?: boolean;
}

/**
 * An engine over layer `id`. Read-write layers (no `committed` marker) write into their `diff`;
 * committed layers and base layers are read-only, as Docker mounts them.
 */
export async function openLayerEngine(driver: Overlay2Driver, id: string, opts: LayerEngineOptions = {}): Promise<OverlayEngine> {
  const p = layerPaths(driver.home, id);
  try {
    await stat(p.dir);
  } catch (e) {
    throw fromNodeError(e, 'openLayerEngine', { path: p.dir, layer: id });
  }
  const lowers = await driver.lowerDirs(id);
  const committed = await stat(p.committed).then(
    () => true,
    () => false,
  );
  // Unprivileged processes cannot write trusted.* xattrs: like the kernel in a user namespace,
  // the engine then keeps its private xattrs in user.overlay.* (layers must have been applied
  // with userxattr too for their opaque markers to be seen).
  const userxattr = driver.features.userxattr || process.getuid?.() !== 0;
  if (lowers === null || committed || opts.readonly === true) {
    return new OverlayEngine({ lowers: [p.diff, ...(lowers ?? [])], readonly: true, userxattr });
  }
  return new OverlayEngine({ lowers, upper: p.diff, work: p.work, userxattr });
}

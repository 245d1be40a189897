/** A container's filesystem through the userspace engine (no mount, no root): `overlay2 fs`. */
import type { OverlayEngine } from '../engine/index.js';
import { OverlayError } from '../errors.js';
import { findContainer } from './containers.js';
import type { ImageStore } from './store.js';

export async function containerEngine(store: ImageStore, ref: string, opts: { readonly?: boolean } = {}): Promise<OverlayEngine> {
  const c = await findContainer(store, ref);
  const m = await store.meta.readMount(c.ID);
  if (m === null) throw new OverlayError('ENOENT', 'container', { reason: 'rw-layer-missing', detail: `container ${c.ID} has no rw layer record` });
  return store.driver.getEngine(m.mountId, opts.readonly === true ? { readonly: true } : {});
}

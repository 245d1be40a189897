// CONTRACT STUB — owned by the archive-diff work; replace the bodies, keep the signatures.
import type { Writable } from 'node:stream';
import { OverlayError } from '../errors.js';
import type { Change, DiffLayerOptions, DiffLayerResult } from './types.js';

/**
 * Native diff: the upper dir of an overlay → an OCI layer tar exactly as Docker writes it
 * (Go archive/tar PAX, lexical walk, 0/0 char devices → `.wh.<name>` mode 0600, opaque dirs →
 * `<dir>/.wh..wh..opq`, only security.capability kept, hard links within the layer).
 */
export async function writeLayerTar(upperDir: string, out: Writable, opts: DiffLayerOptions = {}): Promise<DiffLayerResult> {
  void out; void opts;
  throw new OverlayError('ENOSYS', 'writeLayerTar', { path: upperDir });
}

/** Naive diff: tar of `changes` taken from the full tree `root` (deletions as `.wh.` entries, mode 0). */
export async function exportChanges(root: string, changes: Change[], out: Writable): Promise<DiffLayerResult> {
  void changes; void out;
  throw new OverlayError('ENOSYS', 'exportChanges', { path: root });
}

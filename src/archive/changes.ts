// CONTRACT STUB — owned by the archive-diff work; replace the bodies, keep the signatures.
import { OverlayError } from '../errors.js';
import type { Change, DiffLayerOptions } from './types.js';

/** Docker's naive ChangesDirs: compare two full trees (`oldRoot` null = empty). Sorted by path. */
export async function changesDirs(newRoot: string, oldRoot: string | null): Promise<Change[]> {
  void oldRoot;
  throw new OverlayError('ENOSYS', 'changesDirs', { path: newRoot });
}

/**
 * The same list computed without a mount: walk `upper` and look paths up in `lowers` (top→bottom),
 * honouring whiteouts and opaque dirs. Must equal changesDirs(merged, mergedOfLowers).
 */
export async function overlayChanges(upper: string, lowers: string[], opts: DiffLayerOptions = {}): Promise<Change[]> {
  void lowers; void opts;
  throw new OverlayError('ENOSYS', 'overlayChanges', { path: upper });
}

/** Docker's directory.Size: Σ st_size of non-dir entries, each inode once. */
export async function directorySize(dir: string): Promise<number> {
  throw new OverlayError('ENOSYS', 'directorySize', { path: dir });
}

/** Docker's ChangesSize: Σ lstat sizes under `root` of non-dir A/C entries, hard links once. */
export async function changesSize(root: string, changes: Change[]): Promise<number> {
  void changes;
  throw new OverlayError('ENOSYS', 'changesSize', { path: root });
}

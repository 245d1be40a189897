/**
 * Docker's overlay2 on-disk layout — the only file that spells the directory and file names.
 *
 *   <home>/                 0710    <home>/l/                0700
 *   <home>/l/<LINK>         -> ../<id>/diff
 *   <home>/<id>/            0710    diff/ 0755   work/ 0700   merged/ 0700
 *   <home>/<id>/link        0644    26-char link id, no newline
 *   <home>/<id>/lower       0644    "l/<LINK>:l/<LINK>…", nearest parent first (only with a parent)
 *   <home>/<id>/committed   0600    empty marker written into a parent when a child is created
 */
import { join } from 'node:path';

export const LINK_DIR = 'l';
export const DIFF_DIR = 'diff';
export const WORK_DIR = 'work';
export const MERGED_DIR = 'merged';
export const LINK_FILE = 'link';
export const LOWER_FILE = 'lower';
export const COMMITTED_FILE = 'committed';
/** Prefix of createFromTar's staging dirs (`.staging-<id>-<pid>-<rand>`), swept at init. */
export const STAGING_PREFIX = '.staging-';

export const MODE = {
  home: 0o710,
  linkDir: 0o700,
  layer: 0o710,
  diff: 0o755,
  work: 0o700,
  merged: 0o700,
  link: 0o644,
  lower: 0o644,
  committed: 0o600,
} as const;

/** Docker's driver limit of entries in `lower`. */
export const MAX_DEPTH = 128;
/** Length of a link id (base32 of 17 random bytes, truncated). */
export const LINK_ID_LENGTH = 26;

/** Paths of one layer dir (which may be a staging dir). */
export interface LayerPaths {
  dir: string;
  diff: string;
  work: string;
  merged: string;
  link: string;
  lower: string;
  committed: string;
}

export function layerPathsIn(dir: string): LayerPaths {
  return {
    dir,
    diff: join(dir, DIFF_DIR),
    work: join(dir, WORK_DIR),
    merged: join(dir, MERGED_DIR),
    link: join(dir, LINK_FILE),
    lower: join(dir, LOWER_FILE),
    committed: join(dir, COMMITTED_FILE),
  };
}

/** The dir overlayfs creates inside a workdir (`work/work`), chowned after each rw mount. */
export const kernelWorkDir = (p: LayerPaths): string => join(p.work, 'work');

export const layerDir = (home: string, id: string): string => join(home, id);
export const layerPaths = (home: string, id: string): LayerPaths => layerPathsIn(layerDir(home, id));
export const linkDir = (home: string): string => join(home, LINK_DIR);
/** `<home>/l/<link>` — the symlink itself. */
export const linkPath = (home: string, link: string): string => join(home, LINK_DIR, link);
/** The entry written in `lower` for a link id: `l/<link>`. */
export const lowerEntry = (link: string): string => `${LINK_DIR}/${link}`;
/** The symlink's target: `../<id>/diff`. */
export const linkTarget = (id: string): string => `../${id}/${DIFF_DIR}`;
/** Relative paths (from home) used by the page-size fallback mount. */
export const relDiff = (id: string): string => `${id}/${DIFF_DIR}`;

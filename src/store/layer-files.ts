/**
 * The per-layer metadata files: `link` (the layer's short id), `lower` (its chain of `l/<link>`
 * entries, nearest parent first) and the parent's `committed` marker. Reads validate what they
 * find, so a truncated or tampered file is a clear EINVAL (B36) rather than a mount of `<home>/l`.
 */
import { lstat, readFile, readlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { OverlayError, fromNodeError, isNotFound } from '../errors.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import { LINK_DIR, MAX_DEPTH, MODE, layerPaths, lowerEntry } from './layout.js';
import { isLinkId } from './short-link.js';

/** Write the empty `committed` marker into `parent` (Docker: a missing parent fails here). */
export async function markCommitted(home: string, parent: string, child: string): Promise<void> {
  const pp = layerPaths(home, parent);
  try {
    await writeFileAtomic(pp.committed, '', MODE.committed);
  } catch (e) {
    if (isNotFound(e)) {
      throw new OverlayError('ENOENT', 'create', { path: pp.dir, layer: child, reason: 'parent-not-found', detail: `invalid output path: ${pp.committed}` });
    }
    throw e;
  }
}

/** The layer's link id; a missing, empty or malformed `link` is a clear error. */
export async function readLinkId(home: string, id: string): Promise<string> {
  const p = layerPaths(home, id);
  let link: string;
  try {
    link = (await readFile(p.link, 'utf8')).trim();
  } catch (e) {
    throw fromNodeError(e, 'read', { path: p.link, layer: id, reason: 'layer-link-unreadable' });
  }
  if (!isLinkId(link)) {
    throw new OverlayError('EINVAL', 'read', { path: p.link, layer: id, reason: 'corrupt-link-file', detail: `link file holds ${JSON.stringify(link.slice(0, 40))}, not a 26-char link id` });
  }
  return link;
}

/** Entries of `lower` (`l/<link>`), validated; null when the layer has no `lower` (a base layer). */
export async function readLowerEntries(home: string, id: string): Promise<string[] | null> {
  const p = layerPaths(home, id);
  let text: string;
  try {
    text = await readFile(p.lower, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return null;
    throw fromNodeError(e, 'read', { path: p.lower, layer: id });
  }
  const entries = text === '' ? [] : text.split(':');
  if (entries.length === 0) {
    throw new OverlayError('EINVAL', 'read', { path: p.lower, layer: id, reason: 'corrupt-lower-file', detail: 'lower file is empty' });
  }
  for (const e of entries) {
    if (!e.startsWith(`${LINK_DIR}/`) || !isLinkId(e.slice(LINK_DIR.length + 1))) {
      throw new OverlayError('EINVAL', 'read', { path: p.lower, layer: id, reason: 'corrupt-lower-file', detail: `bad lower entry ${JSON.stringify(e.slice(0, 60))}` });
    }
  }
  return entries;
}

/**
 * Docker's getLower: the `lower` of a new child of `parent` = `l/<parent link>` followed by the
 * parent's own entries; more than 128 → EINVAL (reason chain-too-deep) "max depth exceeded".
 */
export async function lowerChain(home: string, parent: string, child: string): Promise<string[]> {
  const pp = layerPaths(home, parent);
  try {
    await lstat(pp.dir);
  } catch (e) {
    throw fromNodeError(e, 'create', { path: pp.dir, layer: child, reason: 'parent-not-found' });
  }
  const lowers = [lowerEntry(await readLinkId(home, parent))];
  lowers.push(...((await readLowerEntries(home, parent)) ?? []));
  if (lowers.length > MAX_DEPTH) {
    throw new OverlayError('EINVAL', 'create', { layer: child, reason: 'chain-too-deep', detail: 'max depth exceeded' });
  }
  return lowers;
}

/** Real paths of a layer's lowers (`<home>/<lower id>/diff`, top→bottom), or null for a base layer. */
export async function lowerDirs(home: string, id: string): Promise<string[] | null> {
  const lowers = await readLowerEntries(home, id);
  if (lowers === null) return null;
  const out: string[] = [];
  for (const l of lowers) {
    const abs = join(home, l);
    try {
      out.push(resolve(dirname(abs), await readlink(abs)));
    } catch (e) {
      throw fromNodeError(e, 'readlink', { path: abs, layer: id, reason: 'missing-lower-link' });
    }
  }
  return out;
}

/**
 * /proc/self/mountinfo as data. Used to tell whether a path is itself a mount point of an
 * overlay (statfs alone cannot: a plain dir on an overlay-backed data root reports the overlay
 * magic too) and to find every mount below a directory for cleanup.
 */
import { readFileSync } from 'node:fs';
import { fromNodeError } from '../errors.js';

export interface MountEntry {
  id: number;
  parentId: number;
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
  superOptions: string;
}

/** Mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const a = line.slice(0, sep).split(' ');
    const b = line.slice(sep + 3).split(' ');
    out.push({
      id: Number(a[0]),
      parentId: Number(a[1]),
      mountPoint: unescape(a[4] ?? ''),
      options: a[5] ?? '',
      fsType: unescape(b[0] ?? ''),
      source: unescape(b[1] ?? ''),
      superOptions: b[2] ?? '',
    });
  }
  return out;
}

export function readMountinfo(): MountEntry[] {
  try {
    return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch (e) {
    throw fromNodeError(e, 'read', { path: '/proc/self/mountinfo' });
  }
}

/** The topmost mount whose mount point is exactly `path` (absolute, normalised), or undefined. */
export function mountAt(path: string, entries = readMountinfo()): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const m of entries) if (m.mountPoint === path) found = m;
  return found;
}

/** Mount points at or below `dir`, deepest (and most recent) first. */
export function mountsUnder(dir: string, entries = readMountinfo()): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const hits = entries.filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(prefix)).map((m) => m.mountPoint);
  // Stable reverse keeps later (stacked) mounts before earlier ones at the same point.
  return hits.map((p, i) => ({ p, i })).sort((x, y) => y.p.split('/').length - x.p.split('/').length || y.i - x.i).map((x) => x.p);
}

/** The mount a path lives on: the latest mount whose mount point is the longest prefix of `path` (absolute, real). */
export function mountContaining(path: string, entries = readMountinfo()): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const m of entries) {
    const prefix = m.mountPoint.endsWith('/') ? m.mountPoint : `${m.mountPoint}/`;
    if (m.mountPoint !== path && !path.startsWith(prefix)) continue;
    if (found === undefined || m.mountPoint.length >= found.mountPoint.length) found = m;
  }
  return found;
}

/**
 * readdir of a merged directory, the kernel's way: the upper first, then each lower top-down; a
 * name seen once is skipped, whiteouts are remembered (and suppress lower names) but never listed.
 * A dir with a single layer is served straight from it, as the kernel does (no filtering). DT_UNKNOWN
 * entries (no d_type, case B33) are lstat'ed so whiteouts never leak from a merged dir.
 */
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { DT_UNKNOWN, S_IFMT, readdirTypes } from '../sys/libc.js';
import { LayerStack, UPPER } from './layer-stack.js';
import type { Node } from './lookup.js';
import { fmtFromDtype } from './stats.js';

export interface MergedEntry {
  name: string;
  /** S_IFMT bits of the topmost entry. */
  fmt: number;
  layer: number;
}

const DT_CHR = 2;
const DT_REG = 8;

export function mergedEntries(layers: LayerStack, dir: Node, filterSingle = false): MergedEntry[] {
  const out: MergedEntry[] = [];
  if (dir.hits.length === 1 && !filterSingle) {
    const h = dir.hits[0]!;
    for (const e of readdirTypes(h.real)) out.push({ name: e.name, fmt: fmtOf(join(h.real, e.name), e.type), layer: h.layer });
    return out;
  }
  const seen = new Set<string>();
  for (const h of dir.hits) {
    // xwhiteouts only count in a lower dir marked opaque=x (guide 1.3).
    const xw = h.layer !== UPPER && layers.getPrivate(h.real, 'opaque') === 'x';
    for (const e of readdirTypes(h.real)) {
      if (seen.has(e.name)) continue;
      seen.add(e.name);
      if (e.type === DT_CHR || e.type === DT_UNKNOWN || (xw && e.type === DT_REG)) {
        const real = join(h.real, e.name);
        const st = lstatSync(real, { bigint: true });
        if (layers.isWhiteout(real, st, h.layer, h.real)) continue;
        out.push({ name: e.name, fmt: Number(st.mode) & S_IFMT, layer: h.layer });
        continue;
      }
      out.push({ name: e.name, fmt: fmtFromDtype(e.type), layer: h.layer });
    }
  }
  return out;
}

function fmtOf(real: string, dtype: number): number {
  if (dtype !== DT_UNKNOWN) return fmtFromDtype(dtype);
  return Number(lstatSync(real).mode) & S_IFMT;
}

/** True when the merged dir lists nothing (whiteouts do not count). */
export function isEmptyDir(layers: LayerStack, dir: Node): boolean {
  return mergedEntries(layers, dir, true).length === 0;
}

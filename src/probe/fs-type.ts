/** The backing filesystem of a path, named the way Docker prints it (statfs magic table). */
import { fsMagic, fsName } from '../sys/statfs.js';

export interface BackingFs {
  magic: number;
  /** `extfs`, `xfs`, `tmpfs`, … or `<unknown>`. */
  name: string;
}

export async function backingFs(path: string): Promise<BackingFs> {
  const magic = await fsMagic(path);
  return { magic, name: fsName(magic) };
}

/**
 * The data root, laid out as Docker's (the only file that spells these names):
 *   <root>/overlay2/                                   driver home (owned by store/)
 *   <root>/image/overlay2/layerdb/sha256/<chain-hex>/   cache-id, diff, parent, size, tar-split
 *   <root>/image/overlay2/layerdb/mounts/<container>/   mount-id, init-id, parent
 *   <root>/image/overlay2/imagedb/content/sha256/<id>   config bytes exactly as loaded
 *   <root>/image/overlay2/imagedb/metadata/sha256/<id>/parent   (committed images)
 *   <root>/image/overlay2/repositories.json
 *   <root>/containers/<id>/config.v2.json
 *   <root>/tmp/                                         scratch on the same filesystem
 */
import { dirname, join } from 'node:path';

/** Our tar-split record format (archive/tar-split.ts), in place of Docker's tar-split.json.gz. */
export const TAR_SPLIT_FILE = 'tar-split.ov2.gz';
/** The data root's mode when we create it (dockerd 20.10: 0710, since CVE-2021-41091). */
export const DATA_ROOT_MODE = 0o710;

export class DataRoot {
  constructor(readonly root: string) {}
  get driverHome(): string { return join(this.root, 'overlay2'); }
  get imageRoot(): string { return join(this.root, 'image', 'overlay2'); }
  get layerDb(): string { return join(this.imageRoot, 'layerdb', 'sha256'); }
  get mountsDb(): string { return join(this.imageRoot, 'layerdb', 'mounts'); }
  get imageContent(): string { return join(this.imageRoot, 'imagedb', 'content', 'sha256'); }
  get imageMetadata(): string { return join(this.imageRoot, 'imagedb', 'metadata', 'sha256'); }
  get repositoriesFile(): string { return join(this.imageRoot, 'repositories.json'); }
  get containersDir(): string { return join(this.root, 'containers'); }
  get tmpDir(): string { return join(this.root, 'tmp'); }

  layerDir(chainHex: string): string { return join(this.layerDb, chainHex); }
  mountDir(containerId: string): string { return join(this.mountsDb, containerId); }
  imageConfig(idHex: string): string { return join(this.imageContent, idHex); }
  imageMeta(idHex: string): string { return join(this.imageMetadata, idHex); }
  containerDir(id: string): string { return join(this.containersDir, id); }
  containerConfig(id: string): string { return join(this.containersDir, id, 'config.v2.json'); }

  /**
   * Every dir the image layer creates up front (so a failed operation leaves the tree as it was),
   * with the modes dockerd 20.10 gives them (read off a live daemon's data root): the root 0710,
   * image/ and layerdb/ 0700, layerdb/sha256 and layerdb/mounts 0755, tmp/ 0700, containers/ 0710.
   * The driver home is created by the driver.
   */
  get skeleton(): Array<[string, number]> {
    return [
      [this.root, DATA_ROOT_MODE], [join(this.root, 'image'), 0o700], [this.imageRoot, 0o700], [dirname(this.layerDb), 0o700],
      [this.layerDb, 0o755], [this.mountsDb, 0o755], [this.imageContent, 0o700], [this.imageMetadata, 0o700],
      [this.containersDir, 0o710], [this.tmpDir, 0o700],
    ];
  }
}

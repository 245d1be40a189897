/** Shared vocabulary of the archive module (layer tar <-> layer directory). */

/** One line of `docker diff`: A(dd), C(hanged), D(eleted); paths are absolute ("/etc/hosts"). */
export type ChangeKind = 'A' | 'C' | 'D';
export interface Change {
  /** Absolute path in the layer, as text (a byte that is not UTF-8 reads as U+FFFD). */
  path: string;
  kind: ChangeKind;
  /** The path's exact bytes, present only when they are not valid UTF-8 (names are bytes, B19). */
  pathBytes?: Buffer;
}

export type Compression = 'none' | 'gzip' | 'zstd';

export interface ApplyLayerOptions {
  /**
   * Write a tar-split record here: every byte of the tar except regular-file content, so the
   * exact original tar can be re-assembled later from it plus the layer dir (`assembleLayer`).
   */
  tarSplitPath?: string;
  /** Opaque markers as `user.overlay.opaque` (rootless/userxattr) instead of `trusted.overlay.opaque`. */
  userxattr?: boolean;
  /** Run the extraction on a worker thread (default true); false runs it on the calling thread. */
  worker?: boolean;
  /** Name used in error messages for the input (e.g. "layer sha256:ab12…"); defaults to the file path. */
  label?: string;
}

export interface ApplyLayerResult {
  /** "sha256:<hex>" of the uncompressed tar stream (the OCI diffID). */
  diffId: string;
  /** Compression detected from the magic bytes. */
  compression: Compression;
  /** Bytes of the uncompressed tar stream. */
  tarSize: number;
  /** Disk size of the layer dir the way Docker's `directory.Size` counts it. */
  size: number;
  /** Number of tar entries processed. */
  entries: number;
}

export interface DiffLayerOptions {
  /** Read opaque markers from `user.overlay.*` instead of `trusted.overlay.*`. */
  userxattr?: boolean;
}

export interface DiffLayerResult {
  /** "sha256:<hex>" of the tar written. */
  diffId: string;
  /** Bytes written. */
  tarSize: number;
}

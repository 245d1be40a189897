/**
 * The image layer of the library: images and containers on top of the overlay2 driver, in Docker's
 * data-root layout. Entry point: `ImageStore.open(root)`, then the functions below.
 */
export { ImageStore, type ImageInfo, type StoreCounts, type OpenOptions } from './store.js';
export { loadImages, type LoadOptions, type LoadResult } from './load.js';
export { saveImages, writeDockerSave, type SaveImageInput } from './save.js';
export {
  createContainer, mountContainer, umountContainer, isContainerMounted, containerChanges, commitContainer,
  removeContainer, removeImage, tagImage, findContainer, setupInitLayer,
  type CreateContainerResult, type CommitOptions, type CommitResult, type RmOptions, type RmiResult,
} from './containers.js';
export { DataRoot, TAR_SPLIT_FILE } from './layout.js';
export type { LayerRecord, ContainerRecord, MountRecord } from './metadata.js';
export { chainIds, chainOf, sha256Digest, EMPTY_LAYER_DIFF_ID } from './digest.js';
export { parseTagRef, formatTag } from './reference.js';
export { containerEngine } from './container-engine.js';

export * from './types.js';
export { applyLayer, assembleLayer } from './apply-layer.js';
export { writeLayerTar, writeTreeTar, exportChanges, findNativeDiffBlocker, sortChanges, type WriteTarOptions } from './diff-layer.js';
export { changesDirs, overlayChanges, directorySize, changesSize, statDifferent } from './changes.js';
export { detectCompression, openDecompressed } from './compression.js';

export * from './types.js';
export { applyLayer, assembleLayer } from './apply-layer.js';
export { writeLayerTar, exportChanges } from './diff-layer.js';
export { changesDirs, overlayChanges, directorySize, changesSize } from './changes.js';
export { detectCompression, openDecompressed } from './compression.js';

export * from './driver.js';
export * from './layout.js';
export * from './short-link.js';
export * from './options.js';
export { lowerChain, lowerDirs, readLinkId, readLowerEntries } from './layer-files.js';

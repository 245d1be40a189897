export * from './fs-type.js';
export * from './d-type.js';
export * from './overlay-features.js';

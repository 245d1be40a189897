export * from './overlay-mount.js';
export * from './mountinfo.js';

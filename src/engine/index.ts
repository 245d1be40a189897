export { OverlayEngine, OverlayStats, OverlayDirent, OverlayFileHandle } from './overlay-fs.js';
export type { OverlayEngineOptions, TimeLike, OverlayStatfs } from './overlay-fs.js';

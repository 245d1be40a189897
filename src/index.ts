/**
 * overlay2 as a library. Layers of the API, top to bottom:
 *  - images and containers (`ImageStore.open(root)` + load/save/create/mount/diff/commit…),
 *  - the graphdriver (`Overlay2Driver.init(home)`: Docker's overlay2 layout and methods),
 *  - layer archives (`applyLayer`, `writeLayerTar`, `overlayChanges`, …) over plain paths,
 *  - the userspace overlay engine (`new OverlayEngine({lowers, upper, work})`),
 *  - kernel mounts and feature probes;
 *  - `withRootLock(root, mode, fn)`: the data root's lock, as the CLI takes it, for callers that may
 *    run beside other processes on one data root.
 */
export { OverlayError, codeOf, hasCode, isNotFound, isExists, fromNodeError } from './errors.js';
export { withRootLock, acquireRootLock, type LockMode, type LockOptions } from './fsutil/lock.js';
export * from './image/index.js';
export { Overlay2Driver, type DriverOptions, type CreateOptions, type DriverFeatures } from './store/driver.js';
export { openLayerEngine, type LayerEngineOptions } from './store/engine-view.js';
export * as archive from './archive/index.js';
export type { Change, ChangeKind, ApplyLayerOptions, ApplyLayerResult, DiffLayerOptions, DiffLayerResult } from './archive/types.js';
export { OverlayEngine, OverlayStats, OverlayDirent, OverlayFileHandle, type OverlayEngineOptions } from './engine/index.js';
export * as mount from './mount/index.js';
export * as probe from './probe/index.js';
export { loadDaemonConfig, parseDaemonConfig, type DaemonConfig } from './config/index.js';
export { main as runCli } from './cli/main.js';

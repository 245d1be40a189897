export * from './libc.js';
export * from './statfs.js';

export * from './daemon-config.js';
export * from './json-parse.js';

export * from './errors.js';
export * from './node.js';
export * from './ports.js';
export * from './storage.js';
export * from './types.js';

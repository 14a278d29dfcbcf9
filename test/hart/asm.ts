// The encoder lives in src/hart/asm.ts, where the torture scenarios use it too.
export * from '../../src/hart/asm.js';

// Checkers that hold the layers against each other (DESIGN.md "Checking").

export { auditCoherency, vmQuiescent, type CoherencyOptions } from './coherency.js';
export { guestMemoryHash } from './guest-memory.js';

// Every hart test again, with the block compiler on and a threshold of 1 (every
// block compiled the first time it is dispatched), so each test is also a test
// that compiled code gives the interpreter's results.
import { engine } from './mode.js';

engine.jit = { threshold: 1 };

await import('./amo.test.js');
await import('./bus.test.js');
await import('./conformance.test.js');
await import('./csr.test.js');
await import('./host-trap.test.js');
await import('./isa.test.js');
await import('./machine.test.js');
await import('./misaligned.test.js');
await import('./riscv-tests.test.js');
await import('./sv32.test.js');
await import('./trap.test.js');
await import('./warmup.test.js');

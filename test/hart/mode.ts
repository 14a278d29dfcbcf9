// Which engine the hart tests build their harts with. test/hart/jit.suite.test.ts
// turns the block compiler on (compiling every block the first time it is seen)
// and imports every hart test file again, so each test runs on both engines.
import type { JitOptions } from '../../src/hart/jit/jit.js';

export const engine: { jit: JitOptions | undefined } = { jit: undefined };

/** opts with the current engine's `jit` option added (hart and BareMachine options alike). */
export function withEngine<T extends object>(opts: T): T & { jit?: JitOptions } {
  return engine.jit === undefined ? opts : { ...opts, jit: engine.jit };
}

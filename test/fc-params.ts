// fast-check run parameters shared by the property tests.
//
// A failure report names its seed and path; FC_SEED=<seed> FC_PATH=<path> replays
// exactly that counterexample (endOnFailure: no shrinking again). FC_SEED alone runs
// the whole property from that seed, and FC_RUNS=<n> runs more cases than the
// committed numRuns: together, a local soak over many seeds.
//
// Array arbitraries in these tests pass `size: 'max'`: fast-check's default size
// ('small') caps a generated array at 2 * minLength + 10 elements whatever maxLength
// says, so an fc.array(op, { maxLength: 50 }) never tried more than 12 ops.

import type { Parameters } from 'fast-check';

export function fcParams<T>(numRuns: number): Parameters<T> {
  const runs = process.env.FC_RUNS ? Number(process.env.FC_RUNS) : numRuns;
  const seed = process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {};
  if (process.env.FC_PATH) return { numRuns: runs, ...seed, path: process.env.FC_PATH, endOnFailure: true };
  return { numRuns: runs, ...seed };
}

/** A replay runs one case: the totals a test checks over a whole run mean nothing then. */
export const fcReplaying = (): boolean => process.env.FC_PATH !== undefined;

// Runs jobs in this thread or over worker_threads (tinypool), handing each result to
// onResult as it arrives. Results are the same either way (a job is a pure function
// of its data); only their arrival order differs, and the campaign sorts records.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runJob } from './jobs.js';
import type { Job, JobResult } from './jobs.js';

/**
 * The compiled worker. Workers load JavaScript: from dist/ when this module runs
 * from src/ (vitest), beside this file when it runs from dist/ (the CLI).
 */
export function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? fileURLToPath(new URL('../../dist/torture/worker.js', import.meta.url)) : fileURLToPath(new URL('./worker.js', import.meta.url));
  if (!existsSync(file)) throw new Error(`--workers needs the compiled worker ${file}: run npm run build first`);
  return file;
}

export async function runJobs(jobs: readonly Job[], workers: number, onResult: (r: JobResult, job: Job) => void): Promise<void> {
  if (workers <= 1) {
    for (const job of jobs) {
      onResult(runJob(job), job);
      // Let the event loop breathe between jobs (progress output, EPIPE).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return;
  }
  const { Tinypool } = await import('tinypool');
  const pool = new Tinypool({ filename: workerFile(), minThreads: workers, maxThreads: workers, idleTimeout: 1000 });
  try {
    await Promise.all(jobs.map(async (job) => onResult((await pool.run(job)) as JobResult, job)));
  } finally {
    await pool.destroy();
  }
}

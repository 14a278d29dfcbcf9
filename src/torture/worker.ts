// A worker thread of the torture pool (tinypool loads the compiled file, dist/torture/worker.js).
import { runJob } from './jobs.js';
import type { Job, JobResult } from './jobs.js';

export default function work(job: Job): JobResult {
  return runJob(job);
}

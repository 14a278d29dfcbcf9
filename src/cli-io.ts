// What a command needs of the outside world, and the process's own version of it.
//
// Guest output is streamed as it is produced, never gathered: a guest that floods
// its console makes the run wait for the reader (backpressure), so the host's
// memory holds at most a stream's high-water mark plus one slice of output. A
// reader that goes away (EPIPE: `shadowvisor run ... | head -1`, or a --trace
// piped into head) ends the run quietly with EXIT_STDOUT_CLOSED, as a tool
// killed by SIGPIPE would.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** 128 + SIGPIPE: what a shell shows for a tool whose stdout reader went away. */
export const EXIT_STDOUT_CLOSED = 141;

export interface CommandIo {
  stdout(chunk: string | Uint8Array): void;
  stderr(chunk: string | Uint8Array): void;
  /** Reads a guest image of at most maxBytes; throws an Error whose message a person can act on. */
  readFile(path: string, maxBytes: number): Uint8Array;
  /** True while a reader is behind: the run pauses until drained() resolves. Absent: never. */
  congested?(): boolean;
  /** Resolves once the streams take output again (or one closed). */
  drained?(): Promise<void>;
  /** A reader of stdout or stderr went away (EPIPE): the run ends, quietly. */
  closed?(): boolean;
}

/**
 * Reads a guest image: a regular file only (a device such as /dev/zero never
 * ends), no larger than maxBytes (an image cannot load into RAM smaller than
 * itself, so the bound is the machine's RAM).
 */
export function readImageFile(path: string, maxBytes: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new Error('is a directory');
    if (!st.isFile()) throw new Error('not a regular file (a device, pipe or socket cannot hold a guest image)');
    if (st.size > maxBytes) throw new Error(`${st.size} bytes is larger than the guest's RAM (${maxBytes} bytes), so it cannot be a loadable image`);
    const buf = new Uint8Array(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** The process's stdout and stderr, with backpressure and a quiet end on EPIPE. */
export function processIo(): CommandIo {
  // process.stdout/stderr are never destroyed: after EPIPE every write errors
  // again and writableNeedDrain may stay true, so a closed stream is ours to mark.
  const streams = [process.stdout, process.stderr].map((stream) => ({ stream, closed: false }));
  for (const s of streams) {
    // Without a listener an EPIPE is an uncaught 'error' event and a stack trace.
    s.stream.on('error', () => void (s.closed = true));
  }
  const [out, err] = streams as [typeof streams[0], typeof streams[0]];
  const behind = () => streams.filter((s) => !s.closed && s.stream.writableNeedDrain);
  return {
    stdout: (c) => {
      if (!out.closed) out.stream.write(c);
    },
    stderr: (c) => {
      if (!err.closed) err.stream.write(c);
    },
    readFile: readImageFile,
    congested: () => out.closed || err.closed || behind().length > 0,
    drained: () =>
      new Promise<void>((resolve) => {
        const pending = behind();
        if (pending.length === 0 || out.closed || err.closed) return resolve();
        const finish = () => {
          for (const { stream } of pending) {
            stream.off('drain', finish);
            stream.off('error', finish);
          }
          resolve();
        };
        for (const { stream } of pending) {
          stream.once('drain', finish);
          stream.once('error', finish);
        }
      }),
    closed: () => out.closed || err.closed,
  };
}

/**
 * Wall time a run goes without a break. An EPIPE reaches us as an 'error' event,
 * which only the event loop delivers: a guest that writes a little now and then
 * never fills the pipe, so without a break it would run on into a closed pipe.
 */
const EVENT_LOOP_EVERY_MS = 50;

/**
 * Runs `resume` (a run that returns null when it paused) until it ends, waiting
 * for the streams to drain at every pause and turning to the event loop at
 * least every EVENT_LOOP_EVERY_MS. Returns null when a reader went away.
 */
export async function driveRun<T>(
  io: Pick<CommandIo, 'congested' | 'drained' | 'closed'>,
  resume: (pause: () => boolean) => T | null): Promise<T | null> {
  const congested = io.congested ?? (() => false);
  let breakAt = 0;
  const pause = () => congested() || performance.now() >= breakAt;
  for (;;) {
    breakAt = performance.now() + EVENT_LOOP_EVERY_MS;
    const r = resume(pause);
    if (r !== null) return r;
    if (io.closed?.()) return null;
    if (congested()) await io.drained?.();
    else await new Promise<void>((resolve) => setImmediate(resolve));
    if (io.closed?.()) return null;
  }
}

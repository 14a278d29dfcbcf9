// Runs one command line against a session and prints its answer: the text a
// person reads, or (--json) one JSON object per command on one line:
//   {"command":"info memslots","ok":true,"result":{...}}
//   {"command":"x/4 0x10","ok":false,"error":"gpa 0x10 is outside every memslot"}
// In JSON mode guest console output produced by the command is carried in the
// object ("output"), so stdout stays one object per line; in text mode it is
// printed as it comes, and the answer starts on a fresh line after it.

import { COMMANDS, lookup, parseLine, type ConsoleContext } from './commands.js';
import { describeInternalError } from '../vmm/vmm.js';
import { ConsoleError, type Session } from './session.js';

export interface InterpreterOptions {
  json: boolean;
  write(text: string): void;
}

export class Interpreter {
  readonly ctx: ConsoleContext;
  private readonly json: boolean;
  private readonly write: (text: string) => void;
  /** Guest output seen since the last answer (JSON mode), and whether text mode's last byte was a newline. */
  private guestOut: number[] = [];
  private atLineStart = true;
  failures = 0;

  constructor(session: Session, opts: InterpreterOptions) {
    this.ctx = { session, lastStats: null, quit: false, trace: (line) => this.trace(line) };
    this.json = opts.json;
    this.write = opts.write;
  }

  /** The session's onOutput goes here. */
  guestOutput(bytes: Uint8Array): void {
    if (this.json) {
      for (const b of bytes) this.guestOut.push(b);
      return;
    }
    if (bytes.length === 0) return;
    this.write(Buffer.from(bytes).toString('latin1'));
    this.atLineStart = bytes[bytes.length - 1] === 0x0a;
  }

  private traceOut: string[] = [];

  /** A trace line, as a run produces it: printed at once (text) or carried in the answer (JSON, at most 10000). */
  trace(line: string): void {
    if (this.json) {
      if (this.traceOut.length < 10_000) this.traceOut.push(line);
      return;
    }
    this.freshLine();
    this.write(line + '\n');
  }

  /** Prints a line that is not a command's answer (a banner). */
  note(text: string): void {
    if (this.json) {
      this.write(JSON.stringify({ note: text }) + '\n');
      return;
    }
    this.freshLine();
    this.write(text + '\n');
  }

  /** Returns false when the command failed (it printed one error line and changed nothing). */
  async execute(line: string): Promise<boolean> {
    const parsed = parseLine(line);
    if (parsed === null) return true;
    const command = line.trim();
    try {
      const cmd = lookup(COMMANDS, parsed.word, 'command');
      const r = await cmd.run(this.ctx, parsed.args, parsed.suffix);
      if (this.json) {
        this.write(JSON.stringify({ command, ok: true, result: r.data, ...this.takeOutput() }) + '\n');
      } else if (r.text !== '') {
        this.freshLine();
        this.write(r.text + '\n');
      }
      return true;
    } catch (e) {
      // A ConsoleError is the user's (bad input, nothing changed); anything else is a
      // console bug, reported on one line without ending the session (the machine's own
      // failures never get here: the Vmm turns them into its result).
      const message = e instanceof ConsoleError ? e.message : `internal error in the console: ${describeInternalError(e)}`;
      this.failures++;
      if (this.json) {
        this.write(JSON.stringify({ command, ok: false, error: message, ...this.takeOutput() }) + '\n');
      } else {
        this.freshLine();
        this.write(`error: ${message}\n`);
      }
      return false;
    }
  }

  private freshLine(): void {
    if (!this.atLineStart) this.write('\n');
    this.atLineStart = true;
  }

  private takeOutput(): { output?: string; trace?: string[] } {
    const out: { output?: string; trace?: string[] } = {};
    if (this.guestOut.length > 0) out.output = Buffer.from(this.guestOut).toString('latin1');
    if (this.traceOut.length > 0) out.trace = this.traceOut;
    this.guestOut = [];
    this.traceOut = [];
    return out;
  }
}

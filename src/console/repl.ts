// The console on a terminal: node:readline, bound here and nowhere else.
//   history    readline's own (up/down), 500 lines
//   Tab        completes command names, and info subcommands after "info "
//   Ctrl-C     during a run: stops the guest at the next scheduler step and
//              returns to the prompt; at the prompt: clears the line. Never exits.
//   Ctrl-D     (end of input) quits
// One command runs at a time: lines typed during a run wait their turn. The guest's
// output is printed while it runs, with no prompt on screen; the answer starts on a
// fresh line and the prompt comes back after it.

import { createInterface } from 'node:readline';
import { completions, pcLine } from './commands.js';
import type { Interpreter } from './interpreter.js';
import type { Session } from './session.js';

export const PROMPT = '(shadowvisor) ';

export interface ReplStreams {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  terminal?: boolean;
}

export async function runRepl(session: Session, interp: Interpreter, streams?: ReplStreams): Promise<void> {
  const input = streams?.input ?? process.stdin;
  const output = streams?.output ?? process.stdout;
  const rl = createInterface({
    input,
    output,
    terminal: streams?.terminal ?? (process.stdin.isTTY === true && process.stdout.isTTY === true),
    historySize: 500,
    prompt: PROMPT,
    completer: (line: string): [string[], string] => [completions(line), line],
  });
  let busy = false;
  const queue: string[] = [];
  let closed = false;
  const onSigint = () => {
    if (busy) {
      session.requestInterrupt();
      return;
    }
    output.write('^C\n');
    rl.write(null, { ctrl: true, name: 'u' });
    rl.prompt();
  };
  rl.on('SIGINT', onSigint);
  // With stdin not a terminal, Ctrl-C reaches the process as a signal.
  process.on('SIGINT', onSigint);
  interp.note(`shadowvisor console: stopped before the first instruction. help lists the commands; Ctrl-D quits.`);
  if (session.ended === null) interp.note(pcLine(interp.ctx));
  await new Promise<void>((resolve) => {
    const pump = async () => {
      if (busy) return;
      busy = true;
      while (queue.length > 0 && !interp.ctx.quit) await interp.execute(queue.shift()!);
      busy = false;
      if (interp.ctx.quit || closed) {
        rl.close();
        resolve();
        return;
      }
      rl.prompt();
    };
    rl.on('line', (line) => {
      queue.push(line);
      void pump();
    });
    rl.on('close', () => {
      closed = true;
      if (!busy) resolve();
    });
    rl.prompt();
  });
  process.off('SIGINT', onSigint);
}

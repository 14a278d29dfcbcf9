// The copy of a guest's console output that a run's result keeps. The stream
// itself is unbounded (the CLI writes it as it comes, with backpressure); the
// copy keeps a bounded head, so a guest that floods its console costs the host
// no more than OUTPUT_KEEP_BYTES, and counts what it did not keep.

export const OUTPUT_KEEP_BYTES = 1 << 20;

export class ConsoleCapture {
  private readonly kept: number[] = [];
  /** Bytes past OUTPUT_KEEP_BYTES: streamed, not kept. */
  dropped = 0;

  push(byte: number): void {
    if (this.kept.length < OUTPUT_KEEP_BYTES) this.kept.push(byte);
    else this.dropped++;
  }

  text(): string {
    return Buffer.from(this.kept).toString('latin1');
  }

  /** `outputDropped` for a result, present only when something was dropped. */
  droppedField(): { outputDropped?: number } {
    return this.dropped > 0 ? { outputDropped: this.dropped } : {};
  }
}

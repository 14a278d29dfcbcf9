// Simulated time: an event queue keyed by tick, equal ticks fire in the order they
// were scheduled (FIFO), so a run never depends on heap layout.

export interface TimerHandle {
  readonly time: number;
  /** @internal */ readonly seq: number;
  /** @internal */ fn: (() => void) | null;
}

export class Clock {
  private t = 0;
  private seq = 0;
  private readonly heap: TimerHandle[] = [];
  private live = 0;

  get now(): number {
    return this.t;
  }

  /** Timers scheduled and neither fired nor cancelled. */
  get pending(): number {
    return this.live;
  }

  /** Runs fn when the clock reaches `time` (at once on the next fire if time <= now). */
  at(time: number, fn: () => void): TimerHandle {
    const h: TimerHandle = { time: Math.max(time, this.t), seq: this.seq++, fn };
    this.push(h);
    this.live++;
    return h;
  }

  after(ticks: number, fn: () => void): TimerHandle {
    return this.at(this.t + ticks, fn);
  }

  cancel(h: TimerHandle): void {
    if (h.fn === null) return;
    h.fn = null;
    this.live--;
  }

  /** Earliest pending time, or undefined. */
  nextTime(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.time;
  }

  /** Moves time forward without firing; the scheduler fires at its next step boundary. */
  advance(ticks: number): void {
    this.t += ticks;
  }

  /** Fires every timer due at or before now, including ones scheduled by callbacks. */
  fireDue(): number {
    let n = 0;
    for (;;) {
      this.dropCancelled();
      const h = this.heap[0];
      if (h === undefined || h.time > this.t) return n;
      this.pop();
      const fn = h.fn!;
      h.fn = null;
      this.live--;
      fn();
      n++;
    }
  }

  /** Jumps to the earliest pending timer (if later than now) and fires what is due. */
  jumpToNext(): boolean {
    const next = this.nextTime();
    if (next === undefined) return false;
    if (next > this.t) this.t = next;
    this.fireDue();
    return true;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.fn === null) this.pop();
  }

  private less(a: TimerHandle, b: TimerHandle): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  private push(h: TimerHandle): void {
    const a = this.heap;
    a.push(h);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  private pop(): void {
    const a = this.heap;
    const last = a.pop()!;
    if (a.length === 0) return;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m]!, a[i]!];
      i = m;
    }
  }
}

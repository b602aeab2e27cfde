// Work on one key, one piece at a time in this process, in arrival order.
// A caller whose signal fires while it waits for its turn leaves the queue
// (its turn passes on); work already started is never cut short here.
import { raceSignal } from '../openstack/race-signal';

export class OneAtATime {
  /** Per key, the promise that settles when the last queued piece is done. */
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, signal: AbortSignal | undefined, what: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    try {
      await raceSignal(before, signal, what);
      return await work();
    } finally {
      done();
      // Forget the key only once everything queued before is done too: a caller that gave up
      // waiting must not leave the next one free to start beside a piece still running.
      void tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    }
  }

  /** Keys with work queued or running (for tests: nothing may stay behind). */
  get size(): number {
    return this.tails.size;
  }
}

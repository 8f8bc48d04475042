/**
 * A FIFO of pushed tasks with one asynchronous reader. `close()` ends the reader; items still
 * buffered are handed back by `drain()`.
 */
export class TaskQueue<T> {
  readonly #items: T[] = [];
  #reader: ((item: T | undefined) => void) | undefined;
  #closed = false;

  /** Adds an item (ignored after close). */
  push(item: T): void {
    if (this.#closed) return;
    const reader = this.#reader;
    if (reader !== undefined) {
      this.#reader = undefined;
      reader(item);
    } else this.#items.push(item);
  }

  /** The next item, or undefined once closed. */
  next(): Promise<T | undefined> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.#reader = resolve));
  }

  /** Ends the reader (it receives undefined). */
  close(): void {
    this.#closed = true;
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.(undefined);
  }

  /** Removes and returns every buffered item. */
  drain(): T[] {
    return this.#items.splice(0);
  }
}

/** Counts free slots; `acquire()` waits for one. */
export class Slots {
  #free: number;
  readonly #waiters: Array<() => void> = [];

  /** Starts with `count` free slots. */
  constructor(count: number) {
    this.#free = count;
  }

  /** Takes a slot, waiting until one is free. */
  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Returns a slot. */
  release(): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter();
    else this.#free += 1;
  }
}

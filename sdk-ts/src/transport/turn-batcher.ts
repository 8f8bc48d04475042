/**
 * Collects the items produced during one turn of the event loop and delivers them in batches at
 * its end (setImmediate), so a burst pays one round trip or one stream message instead of one per
 * item. Batches are bounded by item count and by estimated bytes; order is kept, and an item of
 * `maxBytes` or more is delivered alone, after what was pending. Used by the Session streams'
 * outboxes (session-batching.ts) and by `FlowFabricClient.createExecution`.
 */
export class TurnBatcher<T> {
  #pending: T[] = [];
  #bytes = 0;
  #scheduled = false;

  /**
   * @param deliver receives each batch (1 item or more), in order.
   * @param size estimates an item's size, in bytes.
   * @param maxBytes most estimated bytes in one batch.
   * @param maxItems most items in one batch.
   */
  constructor(
    private readonly deliver: (batch: T[]) => void,
    private readonly size: (item: T) => number,
    private readonly maxBytes: number,
    private readonly maxItems: number,
  ) {}

  /** Queues `item` for the end of this turn. */
  add(item: T): void {
    const size = this.size(item);
    if (size >= this.maxBytes) {
      this.flush();
      this.deliver([item]);
      return;
    }
    if (this.#bytes + size > this.maxBytes || this.#pending.length >= this.maxItems) this.flush();
    this.#pending.push(item);
    this.#bytes += size;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.flush();
      });
    }
  }

  /** Delivers what is pending now. */
  flush(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    this.#bytes = 0;
    this.deliver(pending);
  }
}

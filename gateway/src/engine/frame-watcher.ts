/**
 * Live reads of frame streams for tails. One reader per partition with watched streams: a
 * dedicated blocking connection (never the FCALL connection) runs
 * `XREAD COUNT <batch> BLOCK <ms> STREAMS k1..kn id1..idn` over every watched stream of that
 * partition (one hash tag, so one slot in Cluster). A stream newly watched interrupts the XREAD in
 * progress with CLIENT UNBLOCK so the next one includes it. Each stream is read once per reader
 * however many tails follow it; listeners get the entries together with the id they follow, so a
 * tail whose cursor differs reads the gap itself (gateway/src/streams/tail-session.ts).
 */
import { openBlockingConnection, type BlockingConnection, type CommandClient } from "./connections.js";
import { decodeEntries, isEntryId } from "./fcall/read-frames.js";
import type { Raw } from "./fcall/common.js";
import { PartitionKeys } from "./keys.js";
import type { FrameWatch, FrameWatchListener } from "./types.js";

export interface FrameWatcherOptions {
  /** Longest XREAD BLOCK before the reader re-issues it, in ms. */
  readonly blockMs: number;
  /** Entries per stream per XREAD. */
  readonly batch: number;
  /** Called on a read error (the reader reconnects and carries on). */
  readonly onError?: (err: unknown) => void;
}

interface Watched {
  /** The id the next XREAD reads after. */
  lastId: string;
  readonly listeners: Set<FrameWatchListener>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

class PartitionReader {
  private readonly streams = new Map<string, Watched>();
  private connection: BlockingConnection | null = null;
  private running: Promise<void> | null = null;
  /** An XREAD is in flight. */
  private reading = false;
  /** Bumped by every XREAD; lets `interrupt` stop once the XREAD it targets has returned. */
  private generation = 0;
  /** The key set changed since the XREAD in flight was issued. */
  private dirty = false;
  private interrupting = false;
  private closed = false;

  constructor(
    private readonly command: CommandClient,
    private readonly partition: number,
    private readonly opts: FrameWatcherOptions,
  ) {}

  get size(): number { return this.streams.size; }

  watch(key: string, afterId: string, listener: FrameWatchListener): FrameWatch {
    // One XREAD serves every stream of the partition: an id the store refuses would fail it for
    // every tail, so none gets in.
    if (afterId !== "" && !isEntryId(afterId)) throw new RangeError(`not a stream entry id: ${JSON.stringify(afterId.slice(0, 64))}`);
    let w = this.streams.get(key);
    if (!w) {
      w = { lastId: afterId === "" ? "0-0" : afterId, listeners: new Set() };
      this.streams.set(key, w);
      this.dirty = true;
      this.interrupt();
    }
    w.listeners.add(listener);
    this.start();
    const watched = w;
    return {
      close: () => {
        watched.listeners.delete(listener);
        if (watched.listeners.size === 0 && this.streams.get(key) === watched) this.streams.delete(key);
      },
    };
  }

  private start(): void {
    if (this.running || this.closed) return;
    this.running = this.run().finally(() => {
      this.running = null;
      if (this.streams.size > 0 && !this.closed) this.start();
    });
  }

  private async run(): Promise<void> {
    while (!this.closed && this.streams.size > 0) {
      let conn: BlockingConnection;
      try {
        conn = this.connection ??= await openBlockingConnection(this.command, new PartitionKeys(this.partition).prefix);
      } catch (err) {
        this.opts.onError?.(err);
        await sleep(200);
        continue;
      }
      const keys = [...this.streams.keys()];
      const ids = keys.map((k) => this.streams.get(k)!.lastId);
      const watched = keys.map((k) => this.streams.get(k)!);
      this.dirty = false;
      this.reading = true;
      this.generation++;
      let reply: unknown;
      try {
        reply = await conn.conn.xreadBuffer("COUNT", this.opts.batch, "BLOCK", this.opts.blockMs, "STREAMS", ...keys, ...ids);
      } catch (err) {
        this.reading = false;
        if (this.closed) return;
        this.opts.onError?.(err);
        this.connection = null;
        await conn.close().catch(() => undefined);
        await sleep(100);
        continue;
      }
      this.reading = false;
      if (!Array.isArray(reply)) continue; // timeout or CLIENT UNBLOCK
      for (const item of reply as Raw[]) {
        const [rawKey, rawEntries] = item as [Buffer, Raw[]];
        const i = keys.indexOf(rawKey.toString());
        const w = watched[i];
        // Unwatched (or re-watched from another id) while the XREAD ran: nothing to hand over.
        if (i < 0 || !w || this.streams.get(keys[i]!) !== w || w.lastId !== ids[i]) continue;
        const entries = decodeEntries(rawEntries);
        const last = entries[entries.length - 1];
        if (!last) continue;
        w.lastId = last.entryId;
        // Nothing follows the close entry: stop reading this stream.
        if (last.kind === "close") this.streams.delete(keys[i]!);
        for (const listener of [...w.listeners]) {
          try {
            listener(ids[i]!, entries);
          } catch (err) {
            this.opts.onError?.(err);
          }
        }
      }
    }
  }

  /** Makes the XREAD in flight return now (CLIENT UNBLOCK), so the next one includes new streams. */
  private interrupt(): void {
    if (this.interrupting || !this.reading || !this.connection) return;
    this.interrupting = true;
    const conn = this.connection;
    const generation = this.generation;
    void (async () => {
      try {
        // The XREAD may not have reached the server yet (UNBLOCK answers 0): retry until the
        // XREAD that missed the change has returned.
        while (!this.closed && this.dirty && this.reading && this.generation === generation) {
          if (await conn.unblock()) break;
          await sleep(1);
        }
      } catch (err) {
        this.opts.onError?.(err);
      } finally {
        this.interrupting = false;
      }
    })();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.streams.clear();
    const conn = this.connection;
    this.connection = null;
    if (conn) await conn.close();
    await this.running;
  }
}

/** Watches frame streams on behalf of tails; see the module comment. */
export class FrameWatcher {
  private readonly readers = new Map<number, PartitionReader>();
  private closed = false;

  constructor(private readonly command: CommandClient, private readonly opts: FrameWatcherOptions) {}

  /**
   * Calls `listener` with the entries appended to `key` (a frame stream of `partition`) after
   * `afterId`, as they arrive. When the stream is already watched from another id, the listener
   * receives entries after that id (the first argument says which).
   */
  watch(partition: number, key: string, afterId: string, listener: FrameWatchListener): FrameWatch {
    if (this.closed) throw new Error("frame watcher closed");
    let reader = this.readers.get(partition);
    if (!reader) {
      reader = new PartitionReader(this.command, partition, this.opts);
      this.readers.set(partition, reader);
    }
    return reader.watch(key, afterId, listener);
  }

  /** Streams watched right now (diagnostics, tests). */
  get watchedStreams(): number {
    let n = 0;
    for (const r of this.readers.values()) n += r.size;
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    const readers = [...this.readers.values()];
    this.readers.clear();
    await Promise.all(readers.map((r) => r.close()));
  }
}

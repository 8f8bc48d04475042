import { create } from "@bufbuild/protobuf";
import { TailStreamResponseSchema, type Frame, type TailStreamResponse } from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import type { FrameEntry, FrameWatch, StreamCloseReason } from "../engine/types.js";
import { GatewayError } from "../errors.js";
import { closedMessage, frameMessage, frameSize } from "../rpc/frames.js";

/** Where a TailStream call's messages go, whichever transport carries it. */
export interface TailSink {
  /** Sends one message; false when the consumer is not keeping up (send no more until onDrain). */
  send(message: TailStreamResponse): boolean;
  /** Registers the callback run once the consumer can take more after send returned false. */
  onDrain(callback: () => void): void;
  /** Ends the call: OK without an error, else with the error's status. Called once. */
  end(error?: GatewayError): void;
  /** Aborted when the consumer goes away. */
  readonly signal: AbortSignal;
}

export interface TailTarget {
  readonly executionId: string;
  readonly attemptIndex: number;
  /** Exclusive cursor; "" = from the start. */
  readonly afterId: string;
}

export interface TailOptions {
  /** Entries per catch-up read. */
  readonly readBatch: number;
  /** Empty message after this much silence, in ms. */
  readonly keepaliveMs: number;
  /** Re-read period while the stream has no frame yet (its attempt may end without one), in ms. */
  readonly recheckMs: number;
  /** Upper bound of frame bytes per message. */
  readonly maxMessageBytes: number;
}

/** Orders entry ids "ms-seq" ("" = before every entry). */
export function compareEntryIds(a: string, b: string): number {
  const [am, as] = split(a);
  const [bm, bs] = split(b);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}
function split(id: string): [bigint, bigint] {
  if (id === "") return [0n, 0n];
  const dash = id.indexOf("-");
  return [BigInt(id.slice(0, dash)), BigInt(id.slice(dash + 1))];
}

/**
 * One TailStream call. Everything it sends continues from its own cursor, so nothing is missed or
 * repeated: catch-up reads (ff_read_frames) from the cursor until the end of the stream, then live
 * entries from the partition's frame reader (EngineBackend.watchFrames) when they follow the
 * cursor exactly; any gap (the reader followed another id, or the consumer was slow) is read from
 * the cursor again. Ends on the close entry, or on a close the stream's state reports (an attempt
 * that ended without a frame). A slow consumer pauses the tail (nothing is buffered beyond one
 * message); it resumes from the cursor when the transport drains.
 */
export class TailSession {
  private cursor: string;
  private ended = false;
  private reading = false;
  private readAgain = false;
  private paused = false;
  /** The stream has had a frame: its close will arrive as an entry, no re-check needed. */
  private opened = false;
  private watch: FrameWatch | null = null;
  private lastSentAtMs = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly engine: EngineBackend,
    private readonly target: TailTarget,
    private readonly sink: TailSink,
    private readonly opts: TailOptions,
    private readonly onEnd: (session: TailSession) => void,
  ) {
    this.cursor = target.afterId;
  }

  start(): void {
    this.sink.signal.addEventListener("abort", () => this.finish(), { once: true });
    if (this.sink.signal.aborted) return this.finish();
    this.sink.onDrain(() => {
      if (!this.paused) return;
      this.paused = false;
      this.read();
    });
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, Math.max(20, ms));
      t.unref();
      this.timers.push(t);
    };
    every(Math.floor(this.opts.keepaliveMs / 2), () => {
      if (!this.ended && !this.paused && Date.now() - this.lastSentAtMs >= this.opts.keepaliveMs) this.send(create(TailStreamResponseSchema, {}));
    });
    every(this.opts.recheckMs, () => {
      if (!this.opened) this.read();
    });
    this.read();
  }

  /** Ends the call with an error (gateway drain). */
  stop(error: GatewayError): void {
    if (this.ended) return;
    this.sink.end(error);
    this.finish();
  }

  private read(): void {
    if (this.ended || this.paused) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    void this.readLoop().finally(() => { this.reading = false; });
  }

  private async readLoop(): Promise<void> {
    const { executionId, attemptIndex } = this.target;
    try {
      for (;;) {
        this.readAgain = false;
        const r = await this.engine.readFrames({ executionId, attemptIndex, afterId: this.cursor, toId: "", count: this.opts.readBatch });
        if (this.ended) return;
        const more = r.entries.length >= this.opts.readBatch;
        if (r.frameCount > 0) this.opened = true;
        this.deliver(r.entries);
        if (this.ended) return;
        // At the end of a closed stream whose close entry is gone (expired) or was never written
        // (the attempt ended without a frame): the state says how it ended.
        if (!more && r.closed) return this.close(r.closed.reason, r.closed.closedAtMs, r.closed.entryId);
        if (this.paused) return; // the drain callback reads again
        if (!more && !this.watch) {
          this.watch = this.engine.watchFrames(executionId, attemptIndex, this.cursor, (after, entries) => this.live(after, entries));
          // Entries appended between that read and the watch: read once more.
          this.readAgain = true;
        }
        if (!more && !this.readAgain) return;
      }
    } catch (err) {
      this.stop(GatewayError.from(err));
    }
  }

  /** Entries from the partition reader: exactly the entries after `after`. */
  private live(after: string, entries: FrameEntry[]): void {
    if (this.ended) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    if (this.paused) return;
    if (compareEntryIds(this.cursor, after) < 0) return this.read(); // a gap: read it from the cursor
    this.deliver(entries.filter((e) => compareEntryIds(e.entryId, this.cursor) > 0));
  }

  private deliver(entries: readonly FrameEntry[]): void {
    let frames: Frame[] = [];
    let bytes = 0;
    const flush = (): void => {
      if (frames.length === 0) return;
      this.send(create(TailStreamResponseSchema, { frames }));
      frames = [];
      bytes = 0;
    };
    for (const e of entries) {
      if (e.kind === "close") {
        flush();
        this.cursor = e.entryId;
        return this.close(e.reason, e.timestampMs, e.entryId);
      }
      frames.push(frameMessage(e));
      bytes += frameSize(e);
      this.cursor = e.entryId;
      this.opened = true;
      if (bytes >= this.opts.maxMessageBytes || frames.length >= 1000) flush();
    }
    flush();
  }

  private send(message: TailStreamResponse): void {
    this.lastSentAtMs = Date.now();
    if (!this.sink.send(message)) this.paused = true;
  }

  private close(reason: StreamCloseReason, closedAtMs: number, entryId: string): void {
    if (this.ended) return;
    this.sink.send(create(TailStreamResponseSchema, { closed: closedMessage(reason, closedAtMs, entryId) }));
    this.sink.end();
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.watch?.close();
    this.watch = null;
    for (const t of this.timers) clearInterval(t);
    this.onEnd(this);
  }
}

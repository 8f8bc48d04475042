import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { backoffDelayMs, type BackoffPolicy } from "./backoff.js";
import { ErrorCode, FlowFabricError, LocalReason } from "./errors.js";
import {
  ReadStreamRequestSchema, StreamCloseReason, StreamMode, StreamService, TailStreamRequestSchema,
  type Frame, type StreamClosed, type TailStreamResponse,
} from "./gen/flowfabric/v1/stream_pb.js";
import { unaryCall } from "./grpc-call.js";
import { grpcServiceDefinition } from "./transport/grpc-service.js";

/**
 * Output frames, client side: {@link readStream} reads a range of one attempt's frame stream;
 * {@link FrameTail} follows it live as an AsyncIterable that resumes by itself from the last
 * entry id after a dropped connection (nothing missed, nothing twice). See docs/streams.md.
 */

/** How an execution's frame streams are kept (chosen at creation). */
export type StreamModeName = "durable" | "summary" | "best_effort";

/** Why a frame stream closed. */
export type StreamCloseReasonName = "completed" | "failed" | "retry_scheduled" | "cancelled" | "expired" | "lease_lost";

/** One output frame. */
export interface StreamFrame {
  /** Stream entry id "<ms>-<seq>": the cursor to resume after this frame. */
  readonly entryId: string;
  /** 1-based position in the attempt's stream (jumps show frames trimmed away). */
  readonly seq: number;
  /** Frame type as appended (e.g. "token", "log"). */
  readonly frameType: string;
  /** Payload, byte-exact. */
  readonly payload: Uint8Array;
  /** Correlation id; "" when none. */
  readonly correlationId: string;
  /** Metadata as appended. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Server time of the append, in Unix milliseconds. */
  readonly timestampMs: number;
  /** Summary mode: the document version after this frame; 0 otherwise. */
  readonly summaryVersion: number;
  /** Appended with `durable: true`. */
  readonly durable: boolean;
}

/** The end of a frame stream. */
export interface StreamEnd {
  /** Why it closed. */
  readonly reason: StreamCloseReasonName;
  /** When, in Unix milliseconds; 0 when unknown (an attempt that ended without a frame). */
  readonly closedAtMs: number;
}

/** Which stream to read and from where. */
export interface StreamPosition {
  /** Cursor: entries after this entry id; default "" (from the start). */
  readonly afterEntryId?: string;
}

/** Options of {@link readStream}. */
export interface ReadStreamOptions extends StreamPosition {
  /** Upper bound (inclusive entry id); default "" (to the end). */
  readonly toEntryId?: string;
  /** Most entries returned, 1..10000; default 100. */
  readonly count?: number;
}

/** A range of frames and the stream's state. */
export interface ReadStreamResult {
  readonly frames: StreamFrame[];
  /** Pass as `afterEntryId` to continue. */
  readonly nextCursor: string;
  /** `count` entries were returned: more may follow. */
  readonly more: boolean;
  /** Set once the stream is closed (frames may remain after `nextCursor` when `more`). */
  readonly closed: StreamEnd | undefined;
  readonly mode: StreamModeName;
  /** Frames appended so far (trimmed ones included). */
  readonly frameCount: number;
  /** Summary mode: the summary document (JSON text); undefined before the first frame. */
  readonly summary: string | undefined;
  readonly summaryVersion: number;
}

/** Options of {@link FrameTail}. */
export interface TailStreamOptions extends StreamPosition {
  /** Ends the tail (iteration returns) when aborted. */
  readonly signal?: AbortSignal;
  /** Backoff between reconnects; default 50 ms doubling to 2 s. */
  readonly reconnect?: BackoffPolicy;
  /** Reconnects in a row without receiving anything before giving up; default Infinity. */
  readonly maxReconnects?: number;
}

/** What stream calls need from their owner (client or worker): a channel and call metadata. */
export interface StreamAccess {
  readonly client: () => grpc.Client;
  readonly metadata: () => grpc.Metadata;
  /** Deadline of a ReadStream call, in milliseconds. */
  readonly callTimeoutMs: number;
}

const MODE_NAMES: Readonly<Record<number, StreamModeName>> = {
  [StreamMode.UNSPECIFIED]: "durable",
  [StreamMode.DURABLE]: "durable",
  [StreamMode.SUMMARY]: "summary",
  [StreamMode.BEST_EFFORT]: "best_effort",
};
const MODES: Readonly<Record<StreamModeName, StreamMode>> = { durable: StreamMode.DURABLE, summary: StreamMode.SUMMARY, best_effort: StreamMode.BEST_EFFORT };
const CLOSE_NAMES: Readonly<Record<number, StreamCloseReasonName>> = {
  [StreamCloseReason.COMPLETED]: "completed",
  [StreamCloseReason.FAILED]: "failed",
  [StreamCloseReason.RETRY_SCHEDULED]: "retry_scheduled",
  [StreamCloseReason.CANCELLED]: "cancelled",
  [StreamCloseReason.EXPIRED]: "expired",
  [StreamCloseReason.LEASE_LOST]: "lease_lost",
};

/** Stream mode name -> enum (for create requests). */
export function toStreamMode(mode: StreamModeName | undefined): StreamMode {
  return mode === undefined ? StreamMode.UNSPECIFIED : MODES[mode];
}

/** Stream mode enum -> name. */
export function streamModeName(mode: StreamMode): StreamModeName {
  return MODE_NAMES[mode] ?? "durable";
}

/** Converts a Frame message. */
export function fromFrame(f: Frame): StreamFrame {
  return {
    entryId: f.entryId,
    seq: Number(f.seq),
    frameType: f.frameType,
    payload: f.payload,
    correlationId: f.correlationId,
    metadata: { ...f.metadata },
    timestampMs: Number(f.timestampMs),
    summaryVersion: Number(f.summaryVersion),
    durable: f.durable,
  };
}

function fromClosed(c: StreamClosed): StreamEnd {
  return { reason: CLOSE_NAMES[c.reason] ?? "completed", closedAtMs: Number(c.closedAtMs) };
}

/** Reads a range of one attempt's frames (StreamService.ReadStream). */
export async function readStream(access: StreamAccess, executionId: string, attemptIndex: number, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
  const request = create(ReadStreamRequestSchema, {
    executionId, attemptIndex, afterEntryId: options.afterEntryId ?? "", toEntryId: options.toEntryId ?? "", count: options.count ?? 0,
  });
  const r = await unaryCall(access.client(), StreamService.method.readStream, request, access.metadata(), access.callTimeoutMs);
  return {
    frames: r.frames.map(fromFrame),
    nextCursor: r.nextCursor,
    more: r.more,
    closed: r.closed === undefined ? undefined : fromClosed(r.closed),
    mode: streamModeName(r.mode),
    frameCount: Number(r.frameCount),
    summary: r.mode === StreamMode.SUMMARY && r.summary.byteLength > 0 ? Buffer.from(r.summary).toString("utf8") : undefined,
    summaryVersion: Number(r.summaryVersion),
  };
}

/** Codes after which a tail reconnects (a dropped connection, a draining or restarting gateway). */
const RESUMABLE: ReadonlySet<string> = new Set([ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL, ErrorCode.UNKNOWN, ErrorCode.CANCELLED, ErrorCode.DEADLINE_EXCEEDED]);

const tailDefinition = grpcServiceDefinition(StreamService)["tailStream"]!;

/**
 * Follows one attempt's frame stream (StreamService.TailStream) as an AsyncIterable of frames.
 * Iteration ends when the stream closes ({@link end} then says why) or when `signal` aborts. A
 * dropped connection (or a draining gateway) is resumed from the last entry id handed out, so
 * the frames seen are exactly the stream's, in order, each once. Errors that retrying cannot fix
 * (NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED: too many tails) end iteration by throwing a
 * {@link FlowFabricError}. Iterate once.
 */
export class FrameTail implements AsyncIterable<StreamFrame> {
  #cursor: string;
  #end: StreamEnd | undefined;
  #reconnects = 0;
  #call: grpc.ClientReadableStream<TailStreamResponse> | undefined;
  #iterated = false;

  constructor(
    private readonly access: StreamAccess,
    readonly executionId: string,
    readonly attemptIndex: number,
    private readonly options: TailStreamOptions = {},
  ) {
    this.#cursor = options.afterEntryId ?? "";
  }

  /** Entry id of the last frame handed out (or the starting cursor). */
  get cursor(): string { return this.#cursor; }

  /** How the stream closed, once iteration ended on the close. */
  get end(): StreamEnd | undefined { return this.#end; }

  /** Reconnects so far. */
  get reconnects(): number { return this.#reconnects; }

  /** Drops the current connection (the tail resumes on a new one). For tests and failover. */
  interrupt(): void {
    this.#call?.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamFrame> {
    if (this.#iterated) throw FlowFabricError.local(ErrorCode.FAILED_PRECONDITION, LocalReason.CONSUMER_EXISTS, "a FrameTail can be iterated once");
    this.#iterated = true;
    const { signal } = this.options;
    const policy = this.options.reconnect ?? { initialDelayMs: 50, maxDelayMs: 2000 };
    const maxReconnects = this.options.maxReconnects ?? Infinity;
    const aborted = (): boolean => signal?.aborted === true;
    let failures = 0;
    while (!aborted()) {
      const request = create(TailStreamRequestSchema, { executionId: this.executionId, attemptIndex: this.attemptIndex, afterEntryId: this.#cursor });
      let call: grpc.ClientReadableStream<TailStreamResponse>;
      try {
        call = this.access.client().makeServerStreamRequest<typeof request, TailStreamResponse>(
          tailDefinition.path,
          tailDefinition.requestSerialize as (value: typeof request) => Buffer,
          tailDefinition.responseDeserialize as (bytes: Buffer) => TailStreamResponse,
          request,
          this.access.metadata(),
        );
      } catch (error) {
        // The channel was closed (client.close()).
        throw FlowFabricError.local(ErrorCode.CANCELLED, LocalReason.CLOSED, `the tail cannot continue: ${error instanceof Error ? error.message : String(error)}`);
      }
      this.#call = call;
      const onAbort = (): void => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      let failure: unknown;
      try {
        for await (const message of call as AsyncIterable<TailStreamResponse>) {
          failures = 0;
          for (const frame of message.frames) {
            this.#cursor = frame.entryId;
            yield fromFrame(frame);
          }
          if (message.closed !== undefined) {
            this.#end = fromClosed(message.closed);
            return;
          }
        }
      } catch (error) {
        failure = error;
      } finally {
        signal?.removeEventListener("abort", onAbort);
        this.#call = undefined;
        call.cancel();
      }
      if (aborted()) return;
      if (failure !== undefined) {
        const ffError = FlowFabricError.fromServiceError(failure);
        if (!RESUMABLE.has(ffError.code) || failures >= maxReconnects) throw ffError;
      }
      // Ended without a close (or dropped): resume from the cursor after a backoff.
      this.#reconnects += 1;
      const delay = backoffDelayMs(failures++, policy);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
      });
    }
  }
}

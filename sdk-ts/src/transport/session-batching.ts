import { create } from "@bufbuild/protobuf";
import {
  SessionRequestBatchSchema, SessionRequestSchema, SessionResponseBatchSchema, SessionResponseSchema,
  type SessionRequest, type SessionResponse,
} from "../gen/flowfabric/v1/worker_pb.js";

/** Most messages in one batch (the gateway refuses more). */
export const MAX_BATCH_MESSAGES = 1000;
/** A batch is sent before its estimated size passes this; a message this large travels alone. */
export const MAX_BATCH_BYTES = 256 * 1024;
/** Estimated encoded size of a message without a payload. */
const SMALL_MESSAGE_BYTES = 256;

/**
 * Coalesces the messages one side of a Session stream sends in one turn of the event loop into
 * one batch message (docs/protocol.md, "Batching"): one gRPC message instead of many saves most
 * of the per-message cost of the stream. Order is kept: a message too large to share a batch
 * flushes what is pending first. Used by the gateway (SessionResponse) and the SDK (SessionRequest).
 */
export class Outbox<M> {
  #pending: M[] = [];
  #bytes = 0;
  #scheduled = false;

  /**
   * @param write sends one message on the stream (a lone message as is, several wrapped).
   * @param wrap builds the batch message.
   * @param size estimates a message's encoded size, in bytes.
   */
  constructor(
    private readonly write: (message: M) => void,
    private readonly wrap: (messages: M[]) => M,
    private readonly size: (message: M) => number,
  ) {}

  /** Queues `message` for the end of this turn. */
  send(message: M): void {
    const size = this.size(message);
    if (size >= MAX_BATCH_BYTES) {
      this.flush();
      this.write(message);
      return;
    }
    if (this.#bytes + size > MAX_BATCH_BYTES || this.#pending.length >= MAX_BATCH_MESSAGES) this.flush();
    this.#pending.push(message);
    this.#bytes += size;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.flush();
      });
    }
  }

  /** Sends what is pending now. */
  flush(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    this.#bytes = 0;
    this.write(pending.length === 1 ? pending[0]! : this.wrap(pending));
  }
}

/** Wraps gateway -> worker messages into one. */
export function responseBatch(responses: SessionResponse[]): SessionResponse {
  return create(SessionResponseSchema, { body: { case: "batch", value: create(SessionResponseBatchSchema, { responses }) } });
}

/** Wraps worker -> gateway messages into one. */
export function requestBatch(requests: SessionRequest[]): SessionRequest {
  return create(SessionRequestSchema, { body: { case: "batch", value: create(SessionRequestBatchSchema, { requests }) } });
}

/** Estimated encoded size of a gateway -> worker message. */
export function responseSize(message: SessionResponse): number {
  const body = message.body;
  switch (body.case) {
    case "tasks": {
      let bytes = SMALL_MESSAGE_BYTES;
      for (const t of body.value.tasks) {
        bytes += SMALL_MESSAGE_BYTES + t.input.byteLength;
        for (const [k, v] of Object.entries(t.tags)) bytes += k.length + v.length + 4;
      }
      return bytes;
    }
    case "heartbeatAck": return SMALL_MESSAGE_BYTES + body.value.leases.length * 128;
    default: return SMALL_MESSAGE_BYTES;
  }
}

/** Estimated encoded size of a worker -> gateway message. */
export function requestSize(message: SessionRequest): number {
  const body = message.body;
  switch (body.case) {
    case "complete": return SMALL_MESSAGE_BYTES + (body.value.result?.byteLength ?? 0);
    case "fail": return SMALL_MESSAGE_BYTES + body.value.reason.length;
    case "cancel": return SMALL_MESSAGE_BYTES + body.value.reason.length;
    case "updateProgress": return SMALL_MESSAGE_BYTES + body.value.message.length;
    case "appendFrame": {
      let bytes = SMALL_MESSAGE_BYTES + body.value.payload.byteLength;
      for (const [k, v] of Object.entries(body.value.metadata)) bytes += k.length + v.length + 4;
      return bytes;
    }
    case "ack": return SMALL_MESSAGE_BYTES + body.value.leaseIds.length * 48;
    default: return SMALL_MESSAGE_BYTES;
  }
}

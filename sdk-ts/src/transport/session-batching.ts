import { create } from "@bufbuild/protobuf";
import {
  SessionRequestBatchSchema, SessionRequestSchema, SessionResponseBatchSchema, SessionResponseSchema,
  type SessionRequest, type SessionResponse,
} from "../gen/flowfabric/v1/worker_pb.js";
import { TurnBatcher } from "./turn-batcher.js";
import { isOperationBody, mapBytes, requestVariableBytes } from "./worker-operations.js";

/** Most messages in one batch (the gateway refuses more). */
export const MAX_BATCH_MESSAGES = 1000;
/** Upper bound of a batch's estimated size; a message this large travels alone. */
export const MAX_BATCH_BYTES = 256 * 1024;
/**
 * Estimated encoded size of a message's fixed part: ids of a fence (execution, lease, attempt),
 * kind, lane, namespace, trace context, framing. Deliberately generous: an estimate must not be
 * below the real size.
 */
const BASE_BYTES = 640;

/**
 * The batch bound for a stream whose messages may be at most `maxMessageBytes`: a quarter of it
 * (estimates are not exact), and never above MAX_BATCH_BYTES.
 */
export function batchBytesFor(maxMessageBytes: number): number {
  return Math.max(1, Math.min(MAX_BATCH_BYTES, Math.floor(maxMessageBytes / 4)));
}

/**
 * The outbox of one side of a Session stream (docs/protocol.md, "Batching"): the messages sent in
 * one turn of the event loop travel as one batch message — one gRPC message instead of many saves
 * most of the stream's per-message cost. A lone message travels as is; `wrap` builds a batch.
 * Used by the gateway (SessionResponse) and the SDK (SessionRequest).
 */
export function sessionOutbox<M>(
  write: (message: M) => void,
  wrap: (messages: M[]) => M,
  size: (message: M) => number,
  maxMessageBytes: number,
): TurnBatcher<M> {
  return new TurnBatcher((batch) => write(batch.length === 1 ? batch[0]! : wrap(batch)), size, batchBytesFor(maxMessageBytes), MAX_BATCH_MESSAGES);
}

/** Wraps gateway -> worker messages into one. */
export function responseBatch(responses: SessionResponse[]): SessionResponse {
  return create(SessionResponseSchema, { body: { case: "batch", value: create(SessionResponseBatchSchema, { responses }) } });
}

/** Wraps worker -> gateway messages into one. */
export function requestBatch(requests: SessionRequest[]): SessionRequest {
  return create(SessionRequestSchema, { body: { case: "batch", value: create(SessionRequestBatchSchema, { requests }) } });
}

/** Estimated encoded size of a gateway -> worker message (never below the real size). */
export function responseSize(message: SessionResponse): number {
  const body = message.body;
  switch (body.case) {
    case "tasks": {
      let bytes = BASE_BYTES;
      for (const t of body.value.tasks) {
        bytes += BASE_BYTES + t.input.byteLength + Buffer.byteLength(t.kind) + Buffer.byteLength(t.lane) +
          Buffer.byteLength(t.namespace) + Buffer.byteLength(t.tracestate) + mapBytes(t.tags);
      }
      return bytes;
    }
    case "heartbeatAck": {
      let bytes = BASE_BYTES;
      for (const l of body.value.leases) bytes += 160 + Buffer.byteLength(l.reason);
      return bytes;
    }
    case "error": {
      const d = body.value.detail;
      return BASE_BYTES + (d ? Buffer.byteLength(d.message) + Buffer.byteLength(d.field) + Buffer.byteLength(d.reason) + mapBytes(d.metadata) : 0);
    }
    default: return BASE_BYTES;
  }
}

/** Estimated encoded size of a worker -> gateway message (never below the real size). */
export function requestSize(message: SessionRequest): number {
  const body = message.body;
  if (isOperationBody(body)) return BASE_BYTES + requestVariableBytes(body);
  return body.case === "ack" ? BASE_BYTES + body.value.leaseIds.length * 48 : BASE_BYTES;
}


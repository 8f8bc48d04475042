import { create } from "@bufbuild/protobuf";
import {
  FrameSchema, StreamClosedSchema, StreamCloseReason, StreamMode,
  type Frame, type StreamClosed,
} from "@flowfabric/sdk/wire";
import type { FrameRecord, StreamCloseReason as CloseReasonName, StreamMode as StreamModeName } from "../engine/types.js";

/** Engine frame types -> generated messages. */

const MODES: Readonly<Record<StreamModeName, StreamMode>> = {
  durable: StreamMode.DURABLE,
  summary: StreamMode.SUMMARY,
  best_effort: StreamMode.BEST_EFFORT,
};

const CLOSE_REASONS: Readonly<Record<CloseReasonName, StreamCloseReason>> = {
  completed: StreamCloseReason.COMPLETED,
  failed: StreamCloseReason.FAILED,
  retry_scheduled: StreamCloseReason.RETRY_SCHEDULED,
  cancelled: StreamCloseReason.CANCELLED,
  expired: StreamCloseReason.EXPIRED,
  lease_lost: StreamCloseReason.LEASE_LOST,
};

export function streamModeMessage(mode: StreamModeName): StreamMode {
  return MODES[mode] ?? StreamMode.DURABLE;
}

export function closedMessage(reason: CloseReasonName, closedAtMs: number, entryId: string): StreamClosed {
  return create(StreamClosedSchema, {
    reason: CLOSE_REASONS[reason] ?? StreamCloseReason.UNSPECIFIED,
    closedAtMs: BigInt(Math.max(0, Math.trunc(closedAtMs))),
    entryId,
  });
}

export function frameMessage(f: FrameRecord): Frame {
  return create(FrameSchema, {
    entryId: f.entryId,
    seq: BigInt(f.seq),
    frameType: f.frameType,
    payload: f.payload,
    correlationId: f.correlationId,
    metadata: { ...f.metadata },
    timestampMs: BigInt(f.timestampMs),
    summaryVersion: BigInt(f.summaryVersion),
    durable: f.durable,
  });
}

/** Approximate encoded size of a frame, in bytes (for splitting tail messages). */
export function frameSize(f: FrameRecord): number {
  let n = 64 + f.payload.byteLength + f.frameType.length + f.correlationId.length;
  for (const [k, v] of Object.entries(f.metadata)) n += k.length + v.length + 8;
  return n;
}

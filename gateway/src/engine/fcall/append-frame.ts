/** ff_append_frame: one output frame on the running attempt's stream (fenced). */
import type { AppendFrameOutcome, FrameLimits, FrameSpec, LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, int, num, ok, str, type FcallArgs } from "./common.js";

export const FN_APPEND_FRAME = "ff_append_frame";

/** Metadata as stored in the entry (`m` field): a JSON object, "" when empty. */
export function encodeFrameMetadata(metadata: Readonly<Record<string, string>>): string {
  return Object.keys(metadata).length === 0 ? "" : JSON.stringify(metadata);
}

export function buildAppendFrame(fence: LeaseFence, partitions: number, frame: FrameSpec, limits: FrameLimits): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  const p = frame.payload;
  return {
    keys: [k.prefix, k.core],
    argv: [
      ...fenceArgv(fence), frame.frameType, Buffer.from(p.buffer, p.byteOffset, p.byteLength), frame.correlationId,
      encodeFrameMetadata(frame.metadata), frame.durable ? "1" : "0",
      int(limits.maxFrameBytes), int(limits.maxStreamFrames), int(limits.maxStreamBytes), int(limits.maxSummaryBytes),
      int(frame.clientSeq ?? 0),
    ],
  };
}

export function decodeAppendFrame(reply: unknown): AppendFrameOutcome {
  const r = ok(reply, FN_APPEND_FRAME);
  return { entryId: str(r[2]), frameCount: num(r[3]), summaryVersion: num(r[4]), duplicate: num(r[5]) === 1 };
}

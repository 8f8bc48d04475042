/** ff_append_frame: output frames of one lease, in order, on the running attempt's stream (fenced). */
import { EngineError } from "../errors.js";
import type { AppendFrameOutcome, FrameLimits, FrameSpec, LeaseFence } from "../types.js";
import { arr, executionKeys, fenceArgv, int, num, ok, str, type FcallArgs } from "./common.js";

export const FN_APPEND_FRAME = "ff_append_frame";
/** Most frames per call. */
export const MAX_FRAMES_PER_CALL = 10_000;

/** Metadata as stored in the entry (`m` field): a JSON object, "" when empty. */
export function encodeFrameMetadata(metadata: Readonly<Record<string, string>>): string {
  return Object.keys(metadata).length === 0 ? "" : JSON.stringify(metadata);
}

export function buildAppendFrames(fence: LeaseFence, partitions: number, frames: readonly FrameSpec[], limits: FrameLimits): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  const argv: (string | Buffer)[] = [
    ...fenceArgv(fence),
    int(limits.maxFrameBytes), int(limits.maxStreamFrames), int(limits.maxStreamBytes), int(limits.maxSummaryBytes),
    int(frames.length),
  ];
  for (const f of frames) {
    const p = f.payload;
    argv.push(f.frameType, Buffer.from(p.buffer, p.byteOffset, p.byteLength), f.correlationId, encodeFrameMetadata(f.metadata),
      f.durable ? "1" : "0", int(f.clientSeq ?? 0));
  }
  return { keys: [k.prefix, k.core], argv };
}

/** One result per frame: its outcome, or the EngineError that refused it. The call's own errors throw. */
export function decodeAppendFrames(reply: unknown): (AppendFrameOutcome | EngineError)[] {
  const r = ok(reply, FN_APPEND_FRAME);
  return r.slice(2).map((item) => {
    const x = arr(item);
    if (num(x[0]) === 1) return { entryId: str(x[1]), frameCount: num(x[2]), summaryVersion: num(x[3]), duplicate: num(x[4]) === 1 };
    try {
      ok(x, FN_APPEND_FRAME);
    } catch (err) {
      if (err instanceof EngineError) return err;
      throw err;
    }
    throw new Error("unreachable");
  });
}

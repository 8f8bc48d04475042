/** ff_read_frames (FCALL_RO, Buffer replies): a range of one attempt's frame stream and its state. */
import type { FrameEntry, FrameRead, FrameReadRequest, StreamCloseReason, StreamMode } from "../types.js";
import { arr, bytes, executionKeys, int, num, okFields, str, type FcallArgs, type Raw } from "./common.js";

export const FN_READ_FRAMES = "ff_read_frames";

export function buildReadFrames(req: FrameReadRequest, partitions: number): FcallArgs {
  const k = executionKeys(req.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [int(req.attemptIndex), req.afterId, req.toId, int(req.count)] };
}

/** ff_read_frames' reply after the envelope. */
const REPLY = ["mode", "closed", "closeReason", "closedAtMs", "frameCount", "summary", "summaryVersion", "entries", "closeEntryId"] as const;

export function decodeReadFrames(reply: unknown): FrameRead {
  const r = okFields(reply, FN_READ_FRAMES, REPLY);
  const summary = r.summary;
  return {
    mode: str(r.mode) as StreamMode,
    closed: num(r.closed) === 1 ? { reason: str(r.closeReason) as StreamCloseReason, closedAtMs: num(r.closedAtMs), entryId: str(r.closeEntryId) } : null,
    frameCount: num(r.frameCount),
    summary: summary === null || summary === undefined ? null : bytes(summary),
    summaryVersion: num(r.summaryVersion),
    entries: decodeEntries(arr(r.entries)),
  };
}

const ENTRY_ID = /^\d{1,20}-\d{1,20}$/;
/** Largest part of a stream entry id (both parts are unsigned 64-bit integers in the store). */
const MAX_ENTRY_PART = 18_446_744_073_709_551_615n;

/** True for a stream entry id "<ms>-<seq>" the store accepts (each part a 64-bit unsigned integer). */
export function isEntryId(value: string): boolean {
  if (!ENTRY_ID.test(value)) return false;
  const dash = value.indexOf("-");
  return BigInt(value.slice(0, dash)) <= MAX_ENTRY_PART && BigInt(value.slice(dash + 1)) <= MAX_ENTRY_PART;
}

/** Time part of an entry id "ms-seq". */
export function entryTimeMs(id: string): number {
  const dash = id.indexOf("-");
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/**
 * Stream entries as XRANGE/XREAD return them ({{id, {field, value, ...}}, ...}, bulk strings as
 * Buffers) -> frames and the close entry (lua/includes/40-frames.lua has the field names).
 */
export function decodeEntries(items: readonly Raw[]): FrameEntry[] {
  const out: FrameEntry[] = [];
  for (const item of items) {
    const [rawId, rawFields] = arr(item);
    const entryId = str(rawId);
    const fields = arr(rawFields ?? []);
    const f = new Map<string, Raw>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(str(fields[i]), fields[i + 1] ?? null);
    const timestampMs = entryTimeMs(entryId);
    if (f.has("x")) {
      out.push({ kind: "close", entryId, reason: str(f.get("x")) as StreamCloseReason, timestampMs });
      continue;
    }
    const m = str(f.get("m"));
    out.push({
      kind: "frame",
      entryId,
      seq: num(f.get("n")),
      frameType: str(f.get("t")),
      payload: bytes(f.get("p")),
      correlationId: str(f.get("c")),
      metadata: m === "" ? {} : (JSON.parse(m) as Record<string, string>),
      timestampMs,
      summaryVersion: num(f.get("v")),
      durable: str(f.get("d")) === "1",
    });
  }
  return out;
}

/** ff_lane_heads: eligible head position of every queue with work in one partition (prunes empty queues from the lane set). */
import { PartitionKeys } from "../keys.js";
import type { QueuePosition } from "../types.js";
import { num, ok, str, type FcallArgs } from "./common.js";

export const FN_LANE_HEADS = "ff_lane_heads";

export function buildLaneHeads(partition: number): FcallArgs {
  return { keys: [new PartitionKeys(partition).prefix], argv: [] };
}

export function decodeLaneHeads(reply: unknown): Map<string, QueuePosition> {
  const r = ok(reply, FN_LANE_HEADS);
  const out = new Map<string, QueuePosition>();
  for (let i = 2; i + 2 < r.length; i += 3) out.set(str(r[i]), { score: num(r[i + 1]), member: str(r[i + 2]) });
  return out;
}

/** ff_lane_heads (FCALL_RO): eligible head score of every lane with work in one partition. */
import { PartitionKeys } from "../keys.js";
import { num, ok, str, type FcallArgs } from "./common.js";

export const FN_LANE_HEADS = "ff_lane_heads";

export function buildLaneHeads(partition: number): FcallArgs {
  return { keys: [new PartitionKeys(partition).prefix], argv: [] };
}

export function decodeLaneHeads(reply: unknown): Map<string, number> {
  const r = ok(reply, FN_LANE_HEADS);
  const out = new Map<string, number>();
  for (let i = 2; i + 1 < r.length; i += 2) out.set(str(r[i]), num(r[i + 1]));
  return out;
}

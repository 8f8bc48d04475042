/** ff_get_result (FCALL_RO, reply read as Buffers): state, result bytes, failure. */
import type { PublicStateName, ResultRecord } from "../types.js";
import { bytes, executionKeys, num, ok, str, type FcallArgs } from "./common.js";

export const FN_GET_RESULT = "ff_get_result";

export function buildGetResult(executionId: string, partitions: number): FcallArgs {
  const k = executionKeys(executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [] };
}

export function decodeGetResult(reply: unknown): ResultRecord {
  const r = ok(reply, FN_GET_RESULT);
  const base = { state: str(r[2]) as PublicStateName, failureReason: str(r[5]), failureCategory: str(r[6]) };
  return num(r[3]) === 1 ? { ...base, result: bytes(r[4]) } : base;
}

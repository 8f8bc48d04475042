/** ff_get_result (FCALL_RO, reply read as Buffers): state, result bytes, failure. */
import type { PublicStateName, ResultRecord } from "../types.js";
import { bytes, executionKeys, num, okFields, str, type FcallArgs } from "./common.js";

export const FN_GET_RESULT = "ff_get_result";

export function buildGetResult(executionId: string, partitions: number): FcallArgs {
  const k = executionKeys(executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [] };
}

/** ff_get_result's reply after the envelope. */
const REPLY = ["state", "hasResult", "result", "failureReason", "failureCategory"] as const;

export function decodeGetResult(reply: unknown): ResultRecord {
  const r = okFields(reply, FN_GET_RESULT, REPLY);
  const base = { state: str(r.state) as PublicStateName, failureReason: str(r.failureReason), failureCategory: str(r.failureCategory) };
  return num(r.hasResult) === 1 ? { ...base, result: bytes(r.result) } : base;
}

/** ff_cancel: by the lease holder (fenced, replay-reconciled) or by an operator (unfenced, audited). */
import type { CancelResult, LeaseFence, PublicStateName } from "../types.js";
import { executionKeys, fenceArgv, num, okFields, str, type FcallArgs } from "./common.js";

export const FN_CANCEL = "ff_cancel";
/** `cancelled_by` recorded for a cancel by the lease holder. */
export const HOLDER = "holder";

export function buildCancelByHolder(fence: LeaseFence, partitions: number, reason: string): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: ["holder", reason, HOLDER, ...fenceArgv(fence)] };
}

export function buildCancelByOperator(executionId: string, partitions: number, reason: string, cancelledBy: string): FcallArgs {
  const k = executionKeys(executionId, partitions);
  return { keys: [k.prefix, k.core], argv: ["operator", reason, cancelledBy, "", "0", ""] };
}

/** ff_cancel's reply after the envelope. */
const REPLY = ["cancelled", "state", "reconciled"] as const;

export function decodeCancel(reply: unknown): CancelResult {
  const r = okFields(reply, FN_CANCEL, REPLY);
  return { cancelled: num(r.cancelled) === 1, state: str(r.state) as PublicStateName, reconciled: num(r.reconciled) === 1 };
}

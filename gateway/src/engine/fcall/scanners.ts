/**
 * The scanner steps share one shape: KEYS = [partition prefix], ARGV = [batch, ...extra],
 * reply {1, "OK", processed, more (0|1)}.
 *   ff_expire_leases   — requeue (new attempt of type reclaim) or fail executions whose lease is past due.
 *   ff_promote_delayed — due delayed executions become eligible with their original score.
 *   ff_expire_timeouts — executions past their deadline or attempt timeout become expired.
 *   ff_purge_terminal  — (extra: retention ms) delete executions that ended at least that long ago.
 *   ff_expire_suspensions — suspensions past their timeout get their timeout behaviour.
 */
import { PartitionKeys } from "../keys.js";
import type { ScanResult } from "../types.js";
import { int, num, okFields, type FcallArgs } from "./common.js";

export const FN_EXPIRE_LEASES = "ff_expire_leases";
export const FN_PROMOTE_DELAYED = "ff_promote_delayed";
export const FN_EXPIRE_TIMEOUTS = "ff_expire_timeouts";
export const FN_PURGE_TERMINAL = "ff_purge_terminal";
export const FN_EXPIRE_SUSPENSIONS = "ff_expire_suspensions";
export type ScannerFunction =
  | typeof FN_EXPIRE_LEASES | typeof FN_PROMOTE_DELAYED | typeof FN_EXPIRE_TIMEOUTS | typeof FN_PURGE_TERMINAL | typeof FN_EXPIRE_SUSPENSIONS;

export function buildScan(partition: number, batch: number, ...extra: number[]): FcallArgs {
  return { keys: [new PartitionKeys(partition).prefix], argv: [int(batch), ...extra.map(int)] };
}

export function decodeScan(reply: unknown, fn: ScannerFunction): ScanResult {
  const r = okFields(reply, fn, ["processed", "more"]);
  return { processed: num(r.processed), more: num(r.more) === 1 };
}

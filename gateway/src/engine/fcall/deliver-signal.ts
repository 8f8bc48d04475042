/** ff_deliver_signal: records a signal on a waitpoint; may resume the execution (token already checked). */
import type { SignalOutcome, SignalSpec } from "../signal-types.js";
import { executionKeys, int, ok, str, type FcallArgs } from "./common.js";

export const FN_DELIVER_SIGNAL = "ff_deliver_signal";

export function buildDeliverSignal(spec: SignalSpec, partitions: number): FcallArgs {
  const k = executionKeys(spec.executionId, partitions);
  return {
    keys: [k.prefix, k.core],
    argv: [
      spec.waitpointId, spec.name, Buffer.from(spec.payload.buffer, spec.payload.byteOffset, spec.payload.byteLength),
      spec.source, spec.idempotencyKey, int(spec.maxSignals), spec.traceparent, spec.tracestate,
    ],
  };
}

export function decodeDeliverSignal(reply: unknown): SignalOutcome {
  const r = ok(reply, FN_DELIVER_SIGNAL);
  return {
    effect: str(r[2]) as SignalOutcome["effect"],
    signalId: str(r[3]),
    executionTraceparent: str(r[4]),
    executionTracestate: str(r[5]),
  };
}

/** ff_resume_signals (FCALL_RO, reply as Buffers): the signals that satisfied the attempt's last resume (fenced). */
import type { SignalRecord } from "../signal-types.js";
import type { LeaseFence } from "../types.js";
import { bytes, executionKeys, fenceArgv, num, ok, str, type FcallArgs } from "./common.js";

export const FN_RESUME_SIGNALS = "ff_resume_signals";

export function buildResumeSignals(fence: LeaseFence, partitions: number): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: fenceArgv(fence) };
}

/** Fields per signal in the reply. */
const SIGNAL_FIELDS = 7;

export function decodeResumeSignals(reply: unknown): SignalRecord[] {
  const r = ok(reply, FN_RESUME_SIGNALS);
  const out: SignalRecord[] = [];
  for (let s = 0, i = 3; s < num(r[2]); s++, i += SIGNAL_FIELDS) {
    const signalId = str(r[i]);
    out.push({
      signalId,
      waitpointId: str(r[i + 1]),
      name: str(r[i + 2]),
      payload: bytes(r[i + 3]),
      source: str(r[i + 4]),
      acceptedAtMs: Number(signalId.split("-")[0]) || 0,
      traceparent: str(r[i + 5]),
      tracestate: str(r[i + 6]),
    });
  }
  return out;
}

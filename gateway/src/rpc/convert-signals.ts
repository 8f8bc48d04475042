import { create } from "@bufbuild/protobuf";
import {
  SignalConditionSchema, SignalEffect, SignalMatchMode, SignalSchema, SuspensionInfoSchema, SuspensionTimeoutBehavior,
  WaitpointInfoSchema, WaitpointTokenSchema,
  type Signal, type SuspensionInfo, type WaitpointInfo, type WaitpointToken,
} from "@flowfabric/sdk/wire";
import type {
  SignalEffect as SignalEffectName, SignalMatchMode as MatchModeName, SignalRecord, SuspensionRecord,
  SuspensionTimeoutBehavior as TimeoutName, WaitpointRecord,
} from "../engine/signal-types.js";

/** Engine signal types -> generated messages (never a token or secret, except the one just minted). */

const u64 = (n: number): bigint => BigInt(Math.max(0, Math.trunc(n)));

const EFFECT: Readonly<Record<SignalEffectName, SignalEffect>> = {
  accepted: SignalEffect.ACCEPTED, triggered_resume: SignalEffect.TRIGGERED_RESUME, duplicate: SignalEffect.DUPLICATE,
};
const MODE: Readonly<Record<MatchModeName, SignalMatchMode>> = { any: SignalMatchMode.ANY, all: SignalMatchMode.ALL, count: SignalMatchMode.COUNT };
const ON_TIMEOUT: Readonly<Record<TimeoutName, SuspensionTimeoutBehavior>> = {
  fail: SuspensionTimeoutBehavior.FAIL, cancel: SuspensionTimeoutBehavior.CANCEL, expire: SuspensionTimeoutBehavior.EXPIRE,
  resume: SuspensionTimeoutBehavior.RESUME,
};

export function signalEffect(effect: SignalEffectName): SignalEffect {
  return EFFECT[effect] ?? SignalEffect.UNSPECIFIED;
}

export function waitpointToken(waitpointId: string, waitpointKey: string, token: string, expiresAtMs: number): WaitpointToken {
  return create(WaitpointTokenSchema, { waitpointId, waitpointKey, token, expiresAtMs: u64(expiresAtMs) });
}

export function signalMessage(s: SignalRecord): Signal {
  return create(SignalSchema, {
    signalId: s.signalId, waitpointId: s.waitpointId, name: s.name, payload: s.payload, source: s.source, acceptedAtMs: u64(s.acceptedAtMs),
  });
}

export function waitpointInfo(w: WaitpointRecord): WaitpointInfo {
  return create(WaitpointInfoSchema, {
    waitpointId: w.waitpointId, key: w.key, state: w.state, attemptIndex: w.attemptIndex, createdAtMs: u64(w.createdAtMs),
    expiresAtMs: u64(w.expiresAtMs), signalCount: w.signalCount, closedAtMs: u64(w.closedAtMs), closeReason: w.closeReason,
  });
}

export function suspensionInfo(s: SuspensionRecord): SuspensionInfo {
  return create(SuspensionInfoSchema, {
    reasonCode: s.reasonCode,
    suspendedAtMs: u64(s.suspendedAtMs),
    timeoutAtMs: u64(s.timeoutAtMs),
    onTimeout: ON_TIMEOUT[s.onTimeout] ?? SuspensionTimeoutBehavior.UNSPECIFIED,
    waitFor: create(SignalConditionSchema, { signalNames: [...s.signalNames], mode: MODE[s.mode] ?? SignalMatchMode.UNSPECIFIED, count: s.count }),
    matchedSignals: s.matchedSignals,
  });
}

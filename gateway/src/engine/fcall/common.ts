/**
 * Shared pieces of the FCALL wrappers: the call shape, the status table ({0, CODE, message,
 * k1, v1, ...} -> EngineError) and field decoders for replies read as strings or Buffers.
 */
import { EngineError, EngineErrorCode } from "../errors.js";
import { PartitionKeys, parseExecutionId } from "../keys.js";

/** Keys and arguments of one FCALL, built by a pure builder. */
export interface FcallArgs {
  readonly keys: string[];
  readonly argv: (string | Buffer)[];
}

/** A raw reply item: strings (or Buffers with the *Buffer variants), integers, nil, nested arrays. */
export type Raw = string | Buffer | number | null | Raw[];

/** Lua status codes -> engine error codes (the one table). */
const STATUS: Readonly<Record<string, EngineErrorCode>> = {
  NOT_FOUND: EngineErrorCode.NOT_FOUND,
  STALE_LEASE: EngineErrorCode.STALE_LEASE,
  LEASE_EXPIRED: EngineErrorCode.LEASE_EXPIRED,
  EXECUTION_NOT_ACTIVE: EngineErrorCode.EXECUTION_NOT_ACTIVE,
  INVALID_ARGUMENT: EngineErrorCode.INVALID_ARGUMENT,
  STREAM_CLOSED: EngineErrorCode.STREAM_CLOSED,
  LIMIT_EXCEEDED: EngineErrorCode.LIMIT_EXCEEDED,
  WAITPOINT_EXISTS: EngineErrorCode.WAITPOINT_EXISTS,
  WAITPOINT_CLOSED: EngineErrorCode.WAITPOINT_CLOSED,
  EXECUTION_NOT_SUSPENDED: EngineErrorCode.EXECUTION_NOT_SUSPENDED,
};

/** Text of a reply item (Buffers decode as UTF-8; nil -> ""). */
export function str(v: Raw | undefined): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  if (Buffer.isBuffer(v)) return v.toString("utf8");
  throw new EngineError(EngineErrorCode.UNAVAILABLE, "unexpected nested reply");
}

/** Number of a reply item (integer reply or decimal string; nil/"" -> 0). */
export function num(v: Raw | undefined): number {
  if (typeof v === "number") return v;
  const s = str(v);
  return s === "" ? 0 : Number(s);
}

/** Bytes of a reply item (a Buffer from a *Buffer call). */
export function bytes(v: Raw | undefined): Uint8Array {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === "string") return Buffer.from(v, "utf8");
  return new Uint8Array(0);
}

export function arr(v: Raw | undefined): Raw[] {
  if (Array.isArray(v)) return v;
  throw new EngineError(EngineErrorCode.UNAVAILABLE, `unexpected reply: ${String(v)}`);
}

/**
 * The `layout.length` reply items from `from` on, by name: the one place a function's positional
 * reply becomes named fields (each layout mirrors the order its Lua header documents).
 */
export function fields<N extends string>(items: readonly Raw[], from: number, layout: readonly N[]): Record<N, Raw | undefined> {
  const out = {} as Record<N, Raw | undefined>;
  layout.forEach((name, i) => { out[name] = items[from + i]; });
  return out;
}

/** The fields after the `{1, "OK", ...}` envelope, by name (see {@link fields}). */
export function okFields<N extends string>(reply: unknown, fn: string, layout: readonly N[]): Record<N, Raw | undefined> {
  return fields(ok(reply, fn), 2, layout);
}

/**
 * Flat name/value pairs -> record, with no prototype: a user's key named `__proto__` (a tag) is an
 * ordinary entry, not a prototype assignment that would silently drop it.
 */
export function pairs(items: readonly Raw[], from = 0, count = (items.length - from) / 2): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (let i = 0; i < count; i++) out[str(items[from + 2 * i])] = str(items[from + 2 * i + 1]);
  return out;
}

/**
 * Checks the `{1, "OK", ...}` / `{0, CODE, message, k, v, ...}` envelope. Returns the reply array
 * on success; throws the mapped EngineError otherwise.
 */
export function ok(reply: unknown, fn: string): Raw[] {
  const r = arr(reply as Raw);
  if (num(r[0]) === 1) return r;
  const code = str(r[1]);
  const mapped = STATUS[code];
  const detail = pairs(r, 3);
  if (!mapped) {
    throw new EngineError(EngineErrorCode.UNAVAILABLE, `${fn}: unexpected status ${code}`, detail);
  }
  return throwError(mapped, `${fn}: ${str(r[2]) || code}`, detail);
}

function throwError(code: EngineErrorCode, message: string, detail: Record<string, string>): never {
  throw new EngineError(code, message, detail);
}

/** Integer argument as a decimal string (no exponent). */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.trunc(n).toString() : String(n);
}

/** The three fence arguments. */
export function fenceArgv(f: { leaseId: string; leaseEpoch: number; attemptId: string }): string[] {
  return [f.leaseId, int(f.leaseEpoch), f.attemptId];
}

/** Prefix and record key of an execution (KEYS[1], KEYS[2] of the per-execution functions). */
export function executionKeys(executionId: string, partitions: number): { prefix: string; core: string; partition: number; uuid: string } {
  const any = parseExecutionId(executionId, Number.MAX_SAFE_INTEGER);
  if (!any) {
    throw new EngineError(EngineErrorCode.INVALID_ARGUMENT, `malformed execution id: ${executionId}`, { field: "executionId" });
  }
  if (any.partition >= partitions) {
    throw new EngineError(EngineErrorCode.NOT_FOUND, `unknown execution: ${executionId}`, { executionId });
  }
  const keys = new PartitionKeys(any.partition);
  return { prefix: keys.prefix, core: keys.core(any.uuid), partition: any.partition, uuid: any.uuid };
}

import { create, toBinary, ScalarType, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/**
 * Deterministic random protobuf messages for the fuzz suite: any message type, built from its
 * descriptor (every field kind, oneofs, maps), with values drawn towards edges (empty, huge,
 * non-ASCII, control characters, `__proto__`, lookalike ids and cursors, extreme numbers), and
 * byte-level mutations of their encodings.
 */

/** mulberry32: a small seeded PRNG (same seed, same run). */
export class Rng {
  private state: number;
  constructor(seed: number) { this.state = seed >>> 0; }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(items: readonly T[]): T { return items[this.int(items.length)]!; }
}

const UUID = "00000000-0000-4000-8000-000000000000";

export interface FuzzContext {
  /** Real ids the fuzzer may reuse (executions created earlier), so some requests reach the store. */
  readonly executionIds: string[];
}

function randomText(rng: Rng, ctx: FuzzContext): string {
  const real = ctx.executionIds.length > 0 ? rng.pick(ctx.executionIds) : `0:${UUID}`;
  const pool = [
    "", "default", "a", "x".repeat(rng.pick([63, 64, 65, 128, 129, 300, 5000])), "é", "ключ\r\n", "\u0000", "\u{1F600}", "a b", "../..",
    "__proto__", "constructor", "prototype", "toString", "hasOwnProperty",
    real, `0${real}`, `${real} `, real.toUpperCase(), `99:${UUID}`, `-1:${UUID}`, `1:${UUID}`, "0:not-a-uuid", UUID, `${UUID}x`,
    "0-0", "1-1", "99999999999999999999-0", "18446744073709551615-18446744073709551615", "18446744073709551616-0", "-1-1", "1-", "$", ">", "+",
    "lane.with:colons", "ns/with/slash", "%00", "'; DROP TABLE", "{p:0}", "ff:{p:0}:e:x", "*", "\\", "\"",
  ];
  if (rng.chance(0.25)) {
    let s = "";
    const n = rng.int(40);
    for (let i = 0; i < n; i++) s += String.fromCodePoint(rng.pick([rng.int(128), 0x80 + rng.int(0x780), 0x4e00 + rng.int(0x100), 0x1f600 + rng.int(0x50), 0xd800 + rng.int(0x800)]));
    return s;
  }
  return rng.pick(pool);
}

function randomNumber(rng: Rng, type: ScalarType): number | bigint | boolean {
  switch (type) {
    case ScalarType.BOOL: return rng.chance(0.5);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return rng.pick([0, -0, 1, -1, 0.5, 50, 100, 100.0001, 101, 1e308, -1e308, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MIN_VALUE]);
    case ScalarType.INT64: case ScalarType.SINT64: case ScalarType.SFIXED64:
      return rng.pick([0n, 1n, -1n, 2n, 1000n, 9_007_199_254_740_993n, -9_223_372_036_854_775_808n, 9_223_372_036_854_775_807n, BigInt(Date.now()), BigInt(Date.now() + 60_000)]);
    case ScalarType.UINT64: case ScalarType.FIXED64:
      return rng.pick([0n, 1n, 2n, 1000n, 9_007_199_254_740_993n, 18_446_744_073_709_551_615n, BigInt(Date.now()), BigInt(Date.now() + 60_000)]);
    case ScalarType.UINT32: case ScalarType.FIXED32:
      return rng.pick([0, 1, 2, 10, 100, 1000, 10_000, 10_001, 4_294_967_295]);
    default:
      return rng.pick([0, 1, -1, 2, 10, 100, 1000, 1001, -1001, 10_001, 2_147_483_647, -2_147_483_648]);
  }
}

function scalarValue(rng: Rng, ctx: FuzzContext, type: ScalarType): unknown {
  if (type === ScalarType.STRING) return randomText(rng, ctx);
  if (type === ScalarType.BYTES) {
    const n = rng.pick([0, 1, 16, 100, 4096, 70_000]);
    const b = new Uint8Array(n);
    for (let i = 0; i < Math.min(n, 64); i++) b[i] = rng.int(256);
    return b;
  }
  return randomNumber(rng, type);
}

function fieldValue(rng: Rng, ctx: FuzzContext, field: DescField, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar": return scalarValue(rng, ctx, field.scalar);
    case "enum": return rng.chance(0.8) ? rng.pick(field.enum.values).number : rng.pick([-1, 99, 2_147_483_647]);
    case "message": return depth > 3 ? undefined : randomInit(rng, ctx, field.message, depth + 1);
    case "list": {
      const n = rng.pick([0, 1, 2, 3, 40, 70]);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        if (field.listKind === "scalar") out.push(scalarValue(rng, ctx, field.scalar));
        else if (field.listKind === "enum") out.push(rng.pick(field.enum.values).number);
        else if (depth <= 3) out.push(randomInit(rng, ctx, field.message, depth + 1));
      }
      return out;
    }
    case "map": {
      const out = Object.create(null) as Record<string, unknown>;
      const n = rng.pick([0, 1, 2, 33]);
      for (let i = 0; i < n; i++) {
        const key = field.mapKey === ScalarType.STRING ? randomText(rng, ctx) : String(rng.int(100));
        out[key] = field.mapKind === "scalar" ? scalarValue(rng, ctx, field.scalar) : field.mapKind === "enum" ? 0 : depth <= 3 ? randomInit(rng, ctx, field.message, depth + 1) : {};
      }
      return out;
    }
  }
}

/** A random init object for `desc`: each field set with some probability; one member per oneof. */
export function randomInit(rng: Rng, ctx: FuzzContext, desc: DescMessage, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const field of desc.fields) {
    if (field.oneof || !rng.chance(0.7)) continue;
    const v = fieldValue(rng, ctx, field, depth);
    if (v !== undefined) init[field.localName] = v;
  }
  for (const oneof of desc.oneofs) {
    if (!rng.chance(0.9)) continue;
    const member = rng.pick(oneof.fields);
    const v = fieldValue(rng, ctx, member, depth);
    if (v !== undefined) init[oneof.localName] = { case: member.localName, value: v };
  }
  return init;
}

/** A random message of `desc` (values the schema allows but the gateway must judge). */
export function randomMessage<D extends DescMessage>(rng: Rng, ctx: FuzzContext, desc: D): MessageShape<D> {
  for (;;) {
    try {
      const m = create(desc, randomInit(rng, ctx, desc) as never);
      toBinary(desc, m); // e.g. an unpaired surrogate cannot be encoded: draw again
      return m;
    } catch {
      // draw again
    }
  }
}

/** Byte-level mutations of an encoding: flips, truncation, garbage, duplicated spans, wrong lengths. */
export function mutate(rng: Rng, bytes: Uint8Array): Uint8Array {
  const out = [...bytes];
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    switch (rng.int(6)) {
      case 0: if (out.length > 0) out[rng.int(out.length)] = rng.int(256); break;
      case 1: out.length = rng.int(out.length + 1); break;
      case 2: for (let i = rng.int(8) + 1; i > 0; i--) out.splice(rng.int(out.length + 1), 0, rng.int(256)); break;
      case 3: { const a = rng.int(out.length + 1); out.splice(a, 0, ...out.slice(a, a + rng.int(16))); break; }
      case 4: out.splice(rng.int(out.length + 1), 0, 0x0a, 0xff, 0xff, 0xff, 0x0f); break; // a length far past the end
      default: out.splice(rng.int(out.length + 1), 0, (rng.int(30) << 3) | rng.pick([3, 4, 6, 7])); break; // invalid wire types
    }
  }
  return Uint8Array.from(out);
}

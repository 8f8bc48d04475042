import { DEFAULT_FRAME_LIMITS } from "../../gateway/src/rpc/validate.js";
import type { FrameEntry, FrameLimits, FrameRecord, FrameSpec, LeaseFence } from "../../gateway/src/engine/types.js";
import { claimReq, createAndClaim, expectCode, keysOf, startEngine, type EngineFixture } from "../support/engine.js";

/** ff_append_frame, ff_read_frames and the stream closes of the transitions (engine level). */
let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

const frame = (payload: string, over: Partial<FrameSpec> = {}): FrameSpec => ({
  frameType: "log", payload: Buffer.from(payload), correlationId: "", metadata: {}, durable: false, ...over,
});
const append = (fence: LeaseFence, payload: string, over: Partial<FrameSpec> = {}, limits: FrameLimits = DEFAULT_FRAME_LIMITS) =>
  fx.backend.appendFrame(fence, frame(payload, over), limits);
const read = (id: string, attemptIndex = 0, afterId = "", count = 10_000) =>
  fx.backend.readFrames({ executionId: id, attemptIndex, afterId, toId: "", count });
const frames = (entries: FrameEntry[]): FrameRecord[] => entries.filter((e): e is FrameRecord => e.kind === "frame");
const text = (entries: FrameEntry[]): string[] => frames(entries).map((f) => Buffer.from(f.payload).toString());

describe("append and read", () => {
  test("frames keep order, bytes, type, correlation id and metadata; entry ids are cursors", async () => {
    const a = await createAndClaim(fx);
    const bin = Buffer.from([0, 255, 10, 13, 0]);
    const r1 = await append(a.grant.fence, "one", { frameType: "token", correlationId: "call-1", metadata: { k: "v", ü: "ï" } });
    const r2 = await fx.backend.appendFrame(a.grant.fence, frame("", { payload: bin, durable: true }), DEFAULT_FRAME_LIMITS);
    const r3 = await append(a.grant.fence, "three");
    expect([r1.frameCount, r2.frameCount, r3.frameCount]).toEqual([1, 2, 3]);
    expect(r1.summaryVersion).toBe(0);
    const all = await read(a.id);
    expect(all.mode).toBe("durable");
    expect(all.closed).toBeNull();
    expect(all.frameCount).toBe(3);
    const f = frames(all.entries);
    expect(f.map((x) => x.entryId)).toEqual([r1.entryId, r2.entryId, r3.entryId]);
    expect(f.map((x) => x.seq)).toEqual([1, 2, 3]);
    expect(f[0]).toMatchObject({ frameType: "token", correlationId: "call-1", metadata: { k: "v", ü: "ï" }, durable: false });
    expect(Buffer.from(f[1]!.payload).equals(bin)).toBe(true);
    expect(f[1]!.durable).toBe(true);
    expect(Math.abs(f[0]!.timestampMs - Date.now())).toBeLessThan(5000);
    // cursor: after r1 -> r2, r3; bounded count
    expect(frames((await read(a.id, 0, r1.entryId)).entries).map((x) => x.seq)).toEqual([2, 3]);
    expect(frames((await read(a.id, 0, "", 2)).entries)).toHaveLength(2);
    // the record names the open stream; keys live under the execution's hash tag
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hget(k.core(uuid), "fopen")).toBe("0");
    expect(await fx.redis.xlen(k.frames(uuid, 0))).toBe(3);
    expect(await fx.redis.hget(k.framesMeta(uuid, 0), "frames")).toBe("3");
  });

  test("fenced: a stale holder, a finished attempt, a requeued lease", async () => {
    const a = await createAndClaim(fx);
    await expectCode(append({ ...a.grant.fence, leaseId: "00000000-0000-0000-0000-000000000000" }, "x"), "STALE_LEASE");
    await expectCode(append({ ...a.grant.fence, leaseEpoch: 9 }, "x"), "STALE_LEASE");
    await fx.backend.complete(a.grant.fence, undefined);
    await expectCode(append(a.grant.fence, "late"), "EXECUTION_NOT_ACTIVE");
    const b = await createAndClaim(fx, {}, { leaseTtlMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    await fx.backend.expireLeases(b.partition, 100);
    await expectCode(append(b.grant.fence, "late"), "LEASE_EXPIRED");
    await expectCode(fx.backend.readFrames({ executionId: `${b.partition}:00000000-0000-4000-8000-000000000000`, attemptIndex: 0, afterId: "", toId: "", count: 1 }), "NOT_FOUND");
  });

  test("a re-sent append (same lease, sequence not above the last stored) is not stored twice", async () => {
    const a = await createAndClaim(fx);
    const r1 = await append(a.grant.fence, "a", { clientSeq: 1 });
    const r2 = await append(a.grant.fence, "b", { clientSeq: 2 });
    const again = await append(a.grant.fence, "a", { clientSeq: 1 });
    expect(again).toMatchObject({ duplicate: true, entryId: r2.entryId, frameCount: 2 });
    expect(r1.duplicate).toBe(false);
    expect((await append(a.grant.fence, "c", { clientSeq: 3 })).frameCount).toBe(3);
    expect(text((await read(a.id)).entries)).toEqual(["a", "b", "c"]);
    // a new lease of the same attempt (after a delay) starts its own numbering
    await fx.backend.delay(a.grant.fence, Date.now() - 1);
    const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect((await append(g.fence, "d", { clientSeq: 1 })).duplicate).toBe(false);
  });

  test("appends re-sent after the lease ended (complete committed meanwhile) are answered as duplicates; a new one is refused", async () => {
    const a = await createAndClaim(fx);
    await append(a.grant.fence, "a", { clientSeq: 1 });
    const r2 = await append(a.grant.fence, "b", { clientSeq: 2 });
    await fx.backend.complete(a.grant.fence, undefined);
    // The worker never saw the answers (a broken stream) and re-sends both after its reconnect.
    expect(await append(a.grant.fence, "a", { clientSeq: 1 })).toMatchObject({ duplicate: true, entryId: r2.entryId, frameCount: 2 });
    expect(await append(a.grant.fence, "b", { clientSeq: 2 })).toMatchObject({ duplicate: true });
    // One never stored is refused as before; so is a re-send under another lease epoch.
    await expectCode(append(a.grant.fence, "c", { clientSeq: 3 }), "EXECUTION_NOT_ACTIVE");
    await expectCode(append({ ...a.grant.fence, leaseEpoch: a.grant.fence.leaseEpoch + 1 }, "a", { clientSeq: 1 }), "EXECUTION_NOT_ACTIVE");
    expect(text((await read(a.id)).entries)).toEqual(["a", "b"]);
  });

  test("caps: frame size, stream frames, stream bytes -> LIMIT_EXCEEDED naming the limit", async () => {
    const a = await createAndClaim(fx);
    const limits = { ...DEFAULT_FRAME_LIMITS, maxFrameBytes: 100, maxStreamFrames: 3, maxStreamBytes: 250 };
    const d = await expectCode(append(a.grant.fence, "x".repeat(98), {}, limits), "LIMIT_EXCEEDED"); // 3 + 98 > 100
    expect(d).toMatchObject({ limit: "max_frame_bytes", max: "100", value: "101" });
    await append(a.grant.fence, "x".repeat(97), {}, limits);
    await append(a.grant.fence, "x".repeat(97), {}, limits);
    expect(await expectCode(append(a.grant.fence, "x".repeat(97), {}, limits), "LIMIT_EXCEEDED")).toMatchObject({ limit: "max_stream_bytes" });
    await append(a.grant.fence, "y", {}, limits);
    expect(await expectCode(append(a.grant.fence, "z", {}, limits), "LIMIT_EXCEEDED")).toMatchObject({ limit: "max_stream_frames", max: "3", value: "4" });
    expect((await read(a.id)).frameCount).toBe(3); // nothing dropped, nothing half-written
  });
});

describe("closing", () => {
  test("complete closes the stream with a close entry; an attempt without frames costs nothing", async () => {
    const a = await createAndClaim(fx);
    await append(a.grant.fence, "f1");
    await fx.backend.complete(a.grant.fence, undefined);
    const r = await read(a.id);
    expect(r.closed).toMatchObject({ reason: "completed" });
    expect(r.closed!.entryId).not.toBe("");
    const last = r.entries[r.entries.length - 1]!;
    expect(last).toMatchObject({ kind: "close", reason: "completed", entryId: r.closed!.entryId });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hget(k.core(uuid), "fopen")).toBe("");
    // no frames: no keys at all, and the read still reports the close
    const b = await createAndClaim(fx);
    await fx.backend.complete(b.grant.fence, undefined);
    const kb = keysOf(b.id);
    expect(await fx.redis.exists(kb.k.frames(kb.uuid, 0), kb.k.framesMeta(kb.uuid, 0))).toBe(0);
    expect((await read(b.id)).closed).toMatchObject({ reason: "completed", entryId: "" });
  });

  test("closed_at_ms is the close entry's id time, the one TailStream reports, even when the stream's ids run ahead of the clock", async () => {
    const a = await createAndClaim(fx);
    await append(a.grant.fence, "f1");
    // An entry id ahead of the server clock (as after a failover to a server whose clock is
    // behind): XADD keeps ids increasing, so the close entry's id is later than TIME.
    const { k, uuid } = keysOf(a.id);
    const ahead = Date.now() + 60_000;
    await fx.redis.xadd(k.frames(uuid, 0), `${ahead}-0`, "t", "log", "p", "x", "n", "2");
    await fx.backend.complete(a.grant.fence, undefined);
    const r = await read(a.id);
    const close = r.entries[r.entries.length - 1]!;
    expect(close.kind).toBe("close");
    expect(r.closed!.closedAtMs).toBe(close.timestampMs);
    expect(r.closed!.closedAtMs).toBeGreaterThanOrEqual(ahead);
  });

  test("fail: retry_scheduled (the retry is a new attempt with its own stream), then failed", async () => {
    const retry = { maxRetries: 1, backoff: "fixed" as const, initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0, retryableCategories: [] };
    const a = await createAndClaim(fx, { retry });
    await append(a.grant.fence, "attempt0");
    await fx.backend.fail(a.grant.fence, "boom", "error", 0);
    expect((await read(a.id, 0)).closed).toMatchObject({ reason: "retry_scheduled" });
    const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect(g.attemptIndex).toBe(1);
    expect((await read(a.id, 1)).closed).toBeNull();
    await append(g.fence, "attempt1");
    await fx.backend.fail(g.fence, "boom", "error", 0);
    const r1 = await read(a.id, 1);
    expect(r1.closed).toMatchObject({ reason: "failed" });
    expect(text(r1.entries)).toEqual(["attempt1"]);
    expect(text((await read(a.id, 0)).entries)).toEqual(["attempt0"]);
  });

  test("cancel by holder and by operator; an execution cancelled before its attempt started", async () => {
    const a = await createAndClaim(fx);
    await append(a.grant.fence, "x");
    await fx.backend.cancelByHolder(a.grant.fence, "enough");
    expect((await read(a.id)).closed).toMatchObject({ reason: "cancelled" });
    const b = await createAndClaim(fx);
    await append(b.grant.fence, "x");
    await fx.backend.cancelByOperator(b.id, "stop", "operator");
    expect((await read(b.id)).closed).toMatchObject({ reason: "cancelled" });
    await expectCode(append(b.grant.fence, "late"), "EXECUTION_NOT_ACTIVE");
    const [c] = await fx.backend.create([{ ...a.spec, namespace: "ns-never-run" }]);
    expect((await read(c!.executionId)).closed).toBeNull(); // waiting: attempt 0 may still run
    await fx.backend.cancelByOperator(c!.executionId, "nope", "operator");
    expect((await read(c!.executionId)).closed).toMatchObject({ reason: "cancelled" });
  });

  test("deadline expiry closes (expired); lease expiry closes (lease_lost)", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 30 });
    await append(a.grant.fence, "x");
    await new Promise((r) => setTimeout(r, 40));
    await fx.backend.expireTimeouts(a.partition, 100);
    expect((await read(a.id)).closed).toMatchObject({ reason: "expired" });
    const b = await createAndClaim(fx, {}, { leaseTtlMs: 1 });
    await append(b.grant.fence, "x");
    await new Promise((r) => setTimeout(r, 5));
    await fx.backend.expireLeases(b.partition, 100);
    expect((await read(b.id)).closed).toMatchObject({ reason: "lease_lost" });
  });

  test("delay keeps the stream open: the resumed attempt appends to the same stream", async () => {
    const a = await createAndClaim(fx);
    await append(a.grant.fence, "before");
    await fx.backend.delay(a.grant.fence, Date.now() - 1);
    expect((await read(a.id)).closed).toBeNull();
    const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect(g.resumed).toBe(true);
    const r = await append(g.fence, "after");
    expect(r.frameCount).toBe(2);
    expect(text((await read(a.id)).entries)).toEqual(["before", "after"]);
  });
});

describe("summary mode", () => {
  test("JSON Merge Patch semantics, version per frame, exact numbers and arrays, short tail", async () => {
    const a = await createAndClaim(fx, { streamMode: "summary" });
    const patch = (p: unknown) => append(a.grant.fence, JSON.stringify(p));
    const first = '{"status":"running","tokens":1,"nested":{"a":1,"b":[1, 2]},"big":12345678901234567890}';
    expect((await append(a.grant.fence, first)).summaryVersion).toBe(1);
    await patch({ tokens: 2, nested: { b: [], c: { d: "x" } }, gone: null });
    const v3 = await patch({ status: null, nested: { a: null }, list: [], n: 0.1 });
    expect(v3.summaryVersion).toBe(3);
    const r = await read(a.id);
    expect(r.mode).toBe("summary");
    expect(r.summaryVersion).toBe(3);
    const doc = Buffer.from(r.summary!).toString();
    expect(JSON.parse(doc)).toEqual({ tokens: 2, nested: { b: [], c: { d: "x" } }, big: 12345678901234567000, list: [], n: 0.1 });
    expect(doc).toContain("12345678901234567890"); // every digit kept
    expect(frames(r.entries).map((f) => f.summaryVersion)).toEqual([1, 2, 3]);
    // a non-object patch replaces the document
    await append(a.grant.fence, "[1,2]");
    expect(Buffer.from((await read(a.id)).summary!).toString()).toBe("[1,2]");
    await patch({ again: true });
    expect(JSON.parse(Buffer.from((await read(a.id)).summary!).toString())).toEqual({ again: true });
    await expectCode(append(a.grant.fence, "not json"), "INVALID_ARGUMENT");
    await expectCode(append(a.grant.fence, JSON.stringify({ big: "x".repeat(100) }), {}, { ...DEFAULT_FRAME_LIMITS, maxSummaryBytes: 50 }), "LIMIT_EXCEEDED");
    for (let i = 0; i < 100; i++) await patch({ i });
    const tail = await read(a.id);
    expect(tail.summaryVersion).toBe(105);
    expect(frames(tail.entries)).toHaveLength(64);
    expect(frames(tail.entries)[63]!.seq).toBe(tail.frameCount);
    expect(JSON.parse(Buffer.from(tail.summary!).toString())).toEqual({ again: true, i: 99 });
  });
});

describe("best-effort mode", () => {
  test("TTL on the stream, refreshed by appends; a durable frame makes it permanent; the meta stays", async () => {
    const a = await createAndClaim(fx, { streamMode: "best_effort", streamTtlMs: 200 });
    await append(a.grant.fence, "x");
    const { k, uuid } = keysOf(a.id);
    const pttl = await fx.redis.pttl(k.frames(uuid, 0));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(200);
    expect(await fx.redis.pttl(k.framesMeta(uuid, 0))).toBe(-1);
    await new Promise((r) => setTimeout(r, 300));
    expect(await fx.redis.exists(k.frames(uuid, 0))).toBe(0);
    const r = await read(a.id);
    expect(r.entries).toHaveLength(0);
    expect(r.frameCount).toBe(1);
    await append(a.grant.fence, "y", { durable: true });
    expect(await fx.redis.pttl(k.frames(uuid, 0))).toBe(-1);
    await append(a.grant.fence, "z");
    expect(await fx.redis.pttl(k.frames(uuid, 0))).toBe(-1);
    expect(text((await read(a.id)).entries)).toEqual(["y", "z"]);
  });

  test("the length cap follows the rate and trims old frames; the close keeps the TTL", async () => {
    const a = await createAndClaim(fx, { streamMode: "best_effort", streamTtlMs: 10 });
    await Promise.all(Array.from({ length: 999 }, (_, i) => append(a.grant.fence, `f${i}`)));
    await append(a.grant.fence, "last", { durable: true }); // permanent from here: the test can read it
    const { k, uuid } = keysOf(a.id);
    const len = await fx.redis.xlen(k.frames(uuid, 0));
    expect(len).toBeLessThan(1000);
    const r = await read(a.id);
    const f = frames(r.entries);
    expect(f[f.length - 1]!.seq).toBe(1000);
    expect(r.mode).toBe("best_effort");
    const b = await createAndClaim(fx, { streamMode: "best_effort", streamTtlMs: 5000 });
    await append(b.grant.fence, "x");
    await fx.backend.complete(b.grant.fence, undefined);
    const kb = keysOf(b.id);
    expect(await fx.redis.pttl(kb.k.frames(kb.uuid, 0))).toBeGreaterThan(0);
    expect((await read(b.id)).closed).toMatchObject({ reason: "completed" });
  });
});

describe("watchFrames", () => {
  test("wakes on append within milliseconds, from a blocking connection", async () => {
    const a = await createAndClaim(fx);
    const got: { after: string; entries: FrameEntry[]; at: number }[] = [];
    const watch = fx.backend.watchFrames(a.id, 0, "", (after, entries) => got.push({ after, entries, at: Date.now() }));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const r1 = await append(a.grant.fence, "live");
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
    expect(got).toHaveLength(1);
    expect(got[0]!.after).toBe("0-0");
    expect(got[0]!.entries.map((e) => e.entryId)).toEqual([r1.entryId]);
    expect(got[0]!.at - t0).toBeLessThan(50);
    await fx.backend.complete(a.grant.fence, undefined);
    for (let i = 0; i < 200 && got.length === 1; i++) await new Promise((r) => setTimeout(r, 1));
    expect(got[1]!.after).toBe(r1.entryId);
    expect(got[1]!.entries[0]).toMatchObject({ kind: "close", reason: "completed" });
    watch.close();
  });
});

import { buildClaim } from "../../gateway/src/engine/fcall/claim.js";
import { PartitionKeys } from "../../gateway/src/engine/keys.js";
import { claimReq, createInPartition, keysOf, record, spec, startEngine, stateVector, type EngineFixture } from "../support/engine.js";
import type { CreateSpec } from "../../gateway/src/engine/types.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

async function createIn(partition: number, specs: CreateSpec[]): Promise<string[]> {
  return createInPartition(fx, partition, specs);
}

describe("ff_claim", () => {
  test("grants in priority then FIFO order, with every Grant field", async () => {
    const base = spec();
    const ids = await createIn(0, [
      { ...base, priority: 0, kind: "first" },
      { ...base, priority: 0, kind: "second" },
      { ...base, priority: 5, kind: "urgent", tags: { t: "v" }, deadlineAtMs: Date.now() + 100_000, traceparent: "tp", tracestate: "ts" },
    ]);
    const out = await fx.backend.claim(claimReq(base, 0, { count: 2 }));
    expect(out.grants.map((g) => g.kind)).toEqual(["urgent", "first"]);
    const g = out.grants[0]!;
    expect(g.fence.executionId).toBe(ids[2]);
    expect(g).toMatchObject({
      attemptIndex: 0, resumed: false, lane: "default", namespace: base.namespace, priority: 5, retryCount: 0,
      tags: { t: "v" }, traceparent: "tp", tracestate: "ts",
    });
    expect(g.fence.leaseEpoch).toBe(1);
    expect(Buffer.from(g.input).toString()).toBe("input");
    expect(g.leaseExpiresAtMs).toBeGreaterThan(Date.now() + 25_000);
    expect(g.deadlineAtMs).toBeGreaterThan(0);
    const r = await record(fx, ids[2]!);
    expect(g.createdAtMs).toBe(Number(r.created));
    expect(await stateVector(fx, ids[2]!)).toEqual(["active", "leased", "not_applicable", "none", "none", "running_attempt", "active"]);
    expect(r).toMatchObject({ aidx: "0", acount: "1", aid: g.fence.attemptId, lid: g.fence.leaseId, epoch: "1", sess: "sess-1", wid: "worker-1", winst: "inst-1", lexp: String(g.leaseExpiresAtMs) });
    expect(Number(r.started)).toBeGreaterThan(0);
    const { k, uuid } = keysOf(ids[2]!);
    expect(await fx.redis.hgetall(`${k.core(uuid)}:a:0`)).toMatchObject({ id: g.fence.attemptId, type: "initial", state: "started", lease_epoch: "1", worker_instance: "inst-1" });
    expect(await fx.redis.zscore(k.leases(), uuid)).toBe(String(g.leaseExpiresAtMs));
    expect(await fx.redis.zscore(k.eligible(base.namespace, "default"), uuid)).toBeNull();
    // head is the remaining one
    const rest = await record(fx, ids[1]!);
    expect(out.head).toEqual({ score: Number(rest.score), member: ids[1]!.split(":")[1] });
    expect(out.unmatchedRemain).toBe(false);
    const last = await fx.backend.claim(claimReq(base, 0));
    expect(last.grants.map((x) => x.kind)).toEqual(["second"]);
    expect(last.head).toBeNull();
  });

  test("input bytes round-trip exactly through the grant (all 256 values, invalid UTF-8)", async () => {
    const input = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i)), Buffer.from([0xc3, 0x28, 0xf0, 0x28, 0x8c, 0x28])]);
    const s = spec({ input, tags: { "ключ": "значение ✓" }, kind: "kïnd" });
    await createIn(1, [s]);
    const g = (await fx.backend.claim(claimReq(s, 1))).grants[0]!;
    expect(Buffer.compare(Buffer.from(g.input), input)).toBe(0);
    expect(g.tags).toEqual({ "ключ": "значение ✓" });
    expect(g.kind).toBe("kïnd");
  });

  test("empty queue: no grants, null head", async () => {
    const out = await fx.backend.claim(claimReq(spec(), 1));
    expect(out).toEqual({ grants: [], head: null, unmatchedRemain: false });
  });

  test("capabilities: skips executions the claimant cannot serve and reports them", async () => {
    const base = spec();
    await createIn(0, [
      { ...base, kind: "gpu", requiredCapabilities: ["gpu"] },
      { ...base, kind: "plain" },
      { ...base, kind: "gpu-x", requiredCapabilities: ["gpu", "x"] },
    ]);
    const out = await fx.backend.claim(claimReq(base, 0, { capabilities: ["cpu", "x"] }));
    expect(out.grants.map((g) => g.kind)).toEqual(["plain"]);
    expect(out.unmatchedRemain).toBe(true);
    expect(out.head).not.toBeNull();
    const gpu = await fx.backend.claim(claimReq(base, 0, { capabilities: ["gpu", "x"] }));
    expect(gpu.grants.map((g) => g.kind)).toEqual(["gpu", "gpu-x"]);
    expect(gpu.unmatchedRemain).toBe(false);
  });

  test("maxScore bounds the grant; namespaces are isolated", async () => {
    const base = spec();
    const [low, high] = await createIn(2, [{ ...base, priority: -5 }, { ...base, priority: 5 }]);
    const highScore = Number((await record(fx, high!)).score);
    const other = await fx.backend.claim(claimReq({ namespace: "someone-else", lane: "default" }, 2));
    expect(other.grants).toHaveLength(0);
    const out = await fx.backend.claim(claimReq(base, 2, { maxScore: highScore }));
    expect(out.grants.map((g) => g.fence.executionId)).toEqual([high]);
    expect(out.head?.score).toBe(Number((await record(fx, low!)).score));
  });

  test("one call grants many (count), skipping stale index entries", async () => {
    const base = spec();
    const ids = await createIn(3, Array.from({ length: 12 }, (_, i) => ({ ...base, kind: `k${i}` })));
    const k = new PartitionKeys(3);
    await fx.redis.zadd(k.eligible(base.namespace, "default"), 0, "00000000-0000-4000-8000-00000000dead");
    const out = await fx.backend.claim(claimReq(base, 3, { count: 10 }));
    expect(out.grants).toHaveLength(10);
    expect(out.grants.map((g) => g.fence.executionId)).toEqual(ids.slice(0, 10));
    expect(new Set(out.grants.map((g) => g.fence.leaseId)).size).toBe(10);
    expect(await fx.redis.zscore(k.eligible(base.namespace, "default"), "00000000-0000-4000-8000-00000000dead")).toBeNull();
  });

  test("a shared claim records each grant under its share's session, worker and instance, in order", async () => {
    const base = spec({ lane: "shared" });
    await createIn(2, Array.from({ length: 5 }, () => base));
    const share = (n: number, slots: number) => ({ claimant: { sessionId: `s${n}`, workerId: `w${n}`, workerInstanceId: `i${n}` }, slots });
    const out = await fx.backend.claim(claimReq(base, 2, { count: 6, claimant: share(1, 0).claimant, shares: [share(1, 2), share(2, 3), share(3, 1)] }));
    expect(out.grants).toHaveLength(5);
    const owners = await Promise.all(out.grants.map(async (g) => {
      const r = await record(fx, g.fence.executionId);
      const { k, uuid } = keysOf(g.fence.executionId);
      const attempt = await fx.redis.hgetall(`${k.core(uuid)}:a:${g.attemptIndex}`);
      return `${r.sess}/${r.wid}/${r.winst}/${attempt.worker_instance}`;
    }));
    expect(owners).toEqual(["s1/w1/i1/i1", "s1/w1/i1/i1", "s2/w2/i2/i2", "s2/w2/i2/i2", "s2/w2/i2/i2"]);
  });

  test("INVALID_ARGUMENT when shares do not add up to count", async () => {
    const base = spec({ lane: "shared-bad" });
    const share = { claimant: { sessionId: "s", workerId: "w", workerInstanceId: "i" }, slots: 1 };
    for (const shares of [[share], [share, share, share]]) {
      await expect(fx.backend.claim(claimReq(base, 0, { count: 2, shares }))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
  });

  test("attempt timeout indexes timeouts at min(deadline, now + timeout)", async () => {
    const base = spec({ attemptTimeoutMs: 5000 });
    const [id, id2] = await createIn(1, [base, { ...base, deadlineAtMs: Date.now() + 1000 }]);
    const out = await fx.backend.claim(claimReq(base, 1));
    const k = new PartitionKeys(1);
    const t1 = Number(await fx.redis.zscore(k.timeouts(), keysOf(id!).uuid));
    expect(t1).toBeGreaterThan(Date.now() + 3000);
    expect(await fx.redis.zscore(k.timeouts(), keysOf(id2!).uuid)).toBe(String((await record(fx, id2!)).deadline));
    expect(out.grants).toHaveLength(2);
  });

  test("INVALID_ARGUMENT on bad arguments", async () => {
    const req = claimReq(spec(), 0, { count: 2 });
    const good = buildClaim(req, ["l1", "l2"], ["a1", "a2"]);
    const call = (keys: string[], argv: (string | Buffer)[]) => fx.redis.call("FCALL", "ff_claim", keys.length, ...keys, ...argv) as Promise<unknown[]>;
    const cases: [number, string][] = [[2, "0"], [2, "x"], [4, "abc"], [8, "0"]];
    for (const [i, v] of cases) {
      const argv = [...good.argv];
      argv[i] = v;
      expect((await call(good.keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    }
    expect((await call(good.keys, good.argv.slice(0, -1))).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    expect((await call(["nope"], good.argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });
});

import { buildRenew } from "../../gateway/src/engine/fcall/renew.js";
import { createAndClaim, keysOf, rawCall, record, startEngine, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

describe("ff_renew (renew and adopt)", () => {
  test("renews leases of several partitions, one result per lease in input order", async () => {
    const grants = await Promise.all(Array.from({ length: 8 }, () => createAndClaim(fx)));
    const fences = grants.map((g) => g.grant.fence);
    const before = Date.now();
    const res = await fx.backend.renew(fences, "sess-2", 60_000);
    expect(res.map((r) => r.executionId)).toEqual(fences.map((f) => f.executionId));
    for (const [i, r] of res.entries()) {
      expect(r.renewed).toBe(true);
      expect(r.leaseExpiresAtMs).toBeGreaterThanOrEqual(before + 59_000);
      const rec = await record(fx, fences[i]!.executionId);
      expect(rec).toMatchObject({ lexp: String(r.leaseExpiresAtMs), sess: "sess-2", wid: "worker-1" });
      const { k, uuid } = keysOf(fences[i]!.executionId);
      expect(await fx.redis.zscore(k.leases(), uuid)).toBe(String(r.leaseExpiresAtMs));
    }
  });

  test("per-lease loss reasons: NOT_FOUND, STALE_LEASE, EXECUTION_NOT_ACTIVE, LEASE_EXPIRED", async () => {
    const a = await createAndClaim(fx);
    const b = await createAndClaim(fx);
    const c = await createAndClaim(fx);
    await fx.backend.complete(c.grant.fence, undefined);
    const d = await createAndClaim(fx);
    // d's lease expires and the scanner requeues it
    const { k, uuid } = keysOf(d.id);
    await fx.redis.hset(k.core(uuid), "lexp", "1");
    await fx.redis.zadd(k.leases(), 1, uuid);
    await fx.backend.expireLeases(d.partition, 100);
    const missing = { ...a.grant.fence, executionId: `${a.partition}:00000000-0000-4000-8000-000000000000` };
    const stale = { ...b.grant.fence, leaseId: "other" };
    const res = await fx.backend.renew([a.grant.fence, missing, stale, c.grant.fence, d.grant.fence, { ...b.grant.fence, leaseEpoch: 9 }, { ...b.grant.fence, attemptId: "x" }], "sess-1", 1000);
    expect(res.map((r) => r.reason ?? "OK")).toEqual(["OK", "NOT_FOUND", "STALE_LEASE", "EXECUTION_NOT_ACTIVE", "LEASE_EXPIRED", "STALE_LEASE", "STALE_LEASE"]);
    expect(res[1]).toMatchObject({ renewed: false, leaseExpiresAtMs: 0 });
  });

  test("an expired lease not yet requeued is still renewed (the fence decides)", async () => {
    const a = await createAndClaim(fx);
    const { k, uuid } = keysOf(a.id);
    await fx.redis.hset(k.core(uuid), "lexp", "1");
    await fx.redis.zadd(k.leases(), 1, uuid);
    const [r] = await fx.backend.renew([a.grant.fence], "sess-1", 5000);
    expect(r!.renewed).toBe(true);
    expect(Number(await fx.redis.zscore(k.leases(), uuid))).toBe(r!.leaseExpiresAtMs);
  });

  test("adopt rebinds session, worker and instance", async () => {
    const a = await createAndClaim(fx);
    const r = await fx.backend.adopt(a.grant.fence, { sessionId: "s9", workerId: "w9", workerInstanceId: "i9" }, 10_000);
    expect(r.renewed).toBe(true);
    expect(await record(fx, a.id)).toMatchObject({ sess: "s9", wid: "w9", winst: "i9", lexp: String(r.leaseExpiresAtMs) });
    const stale = await fx.backend.adopt({ ...a.grant.fence, leaseEpoch: 0 }, { sessionId: "s", workerId: "w", workerInstanceId: "i" }, 10_000);
    expect(stale).toMatchObject({ renewed: false, reason: "STALE_LEASE" });
  });

  test("INVALID_ARGUMENT: mode, ttl, keys, argv count", async () => {
    const a = await createAndClaim(fx);
    const good = buildRenew([a.grant.fence], 4, "s", 1000);
    const bad = async (keys: string[], argv: string[]) => expect((await rawCall(fx, "ff_renew", keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    const argv = good.argv as string[];
    await bad(good.keys, ["steal", ...argv.slice(1)]);
    await bad(good.keys, [argv[0]!, argv[1]!, "0", ...argv.slice(3)]);
    await bad(good.keys, argv.slice(0, -1));
    await bad([good.keys[0]!], argv);
    await bad([good.keys[0]!, "ff:{p:9}:e:x"], argv);
    await bad(good.keys, ["adopt", ...argv.slice(1)]); // adopt needs worker id + instance
  });
});

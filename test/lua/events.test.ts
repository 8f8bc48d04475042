import { parseEvent } from "../../gateway/src/engine/valkey-backend.js";
import type { EngineEvent } from "../../gateway/src/engine/types.js";
import { createInPartition, record, spec, startEngine, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
const events: EngineEvent[] = [];
beforeAll(async () => {
  fx = await startEngine();
  await fx.backend.subscribe((e) => events.push(e));
});
afterAll(async () => { await fx.stop(); });

describe("events (sharded pub/sub on every partition)", () => {
  test("create publishes a wake with partition, namespace, lane and score, on every partition", async () => {
    const s = spec({ lane: "lane|with|bars" });
    const ids: string[] = [];
    for (let p = 0; p < 4; p++) ids.push(...await createInPartition(fx, p, [s]));
    for (const [p, id] of ids.entries()) {
      const score = Number((await record(fx, id)).score);
      for (let i = 0; i < 200 && !events.some((e) => e.type === "wake" && e.partition === p && e.position.score === score && e.position.member === id.split(":")[1]); i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(events).toContainEqual({ type: "wake", partition: p, namespace: s.namespace, lane: "lane|with|bars", position: { score, member: id.split(":")[1] } });
    }
  });

  test("a delayed create publishes nothing", async () => {
    const s = spec({ delayUntilMs: Date.now() + 60_000 });
    await fx.backend.create([s]);
    await fx.redis.ping();
    expect(events.some((e) => e.type === "wake" && e.namespace === s.namespace)).toBe(false);
  });

  test("subscribing twice is refused", async () => {
    await expect(fx.backend.subscribe(() => undefined)).rejects.toThrow(/already/);
  });
});

describe("parseEvent", () => {
  const ch = "ff:{p:3}:events";
  test("decodes the three event kinds; reasons may contain '|'", () => {
    expect(parseEvent(ch, "w|123|m-1|ns/l")).toEqual({ type: "wake", partition: 3, namespace: "ns", lane: "l", position: { score: 123, member: "m-1" } });
    expect(parseEvent(ch, "c|3:u|lid|alice|a|b")).toEqual({ type: "cancel", executionId: "3:u", leaseId: "lid", by: "alice", reason: "a|b" });
    expect(parseEvent(ch, "l|3:u|lid|LEASE_EXPIRED")).toEqual({ type: "lost", executionId: "3:u", leaseId: "lid", reason: "LEASE_EXPIRED" });
  });
  test("malformed -> null", () => {
    expect(parseEvent("other", "w|1|m|a/b")).toBeNull();
    expect(parseEvent(ch, "w|1|m|nolane")).toBeNull();
    expect(parseEvent(ch, "w|1|a/b")).toBeNull();
    expect(parseEvent(ch, "x|1|2")).toBeNull();
    expect(parseEvent(ch, "c|only")).toBeNull();
  });
});

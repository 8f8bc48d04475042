import { HeldTasks } from "../../gateway/src/sessions/held-tasks.js";

/** A session's held-task bookkeeping: pure. */
const fence = (leaseId: string) => ({ executionId: `1:${leaseId}`, leaseId, leaseEpoch: 1, attemptId: "a" });

describe("HeldTasks", () => {
  test("held tasks occupy a slot until their first terminal operation arrives", () => {
    const tasks = new HeldTasks();
    tasks.hold(fence("l1"), false, { traceparent: "tp", tracestate: "ts" });
    tasks.hold(fence("l2"), true, undefined);
    expect([tasks.size, tasks.busy]).toEqual([2, 2]);
    expect(tasks.get("l1")).toMatchObject({ acked: false, traceparent: "tp", tracestate: "ts" });
    const first = tasks.markSettling("l1");
    expect(first?.freed).toBe(true);
    expect(first?.held.acked).toBe(true); // settling implies the worker has it
    expect([tasks.size, tasks.busy]).toEqual([2, 1]);
    expect(tasks.markSettling("l1")?.freed).toBe(false); // a re-sent settle frees nothing more
    expect(tasks.busy).toBe(1);
    expect(tasks.markSettling("unknown")).toBeUndefined();
  });

  test("drop and clear keep the slot count right", () => {
    const tasks = new HeldTasks();
    tasks.hold(fence("l1"), false, undefined);
    tasks.hold(fence("l2"), false, undefined);
    tasks.markSettling("l2");
    expect(tasks.drop("l2")?.fence.leaseId).toBe("l2");
    expect(tasks.busy).toBe(1); // a settling task had already given its slot back
    expect(tasks.drop("l2")).toBeUndefined();
    tasks.ack(["l1", "nope"]);
    expect(tasks.get("l1")?.acked).toBe(true);
    expect(tasks.clear().map((t) => t.fence.leaseId)).toEqual(["l1"]);
    expect([tasks.size, tasks.busy]).toEqual([0, 0]);
  });

  test("a failed settle left unretried for a lease TTL stops being renewed; a new settle revives it", () => {
    const tasks = new HeldTasks();
    tasks.hold(fence("l1"), true, undefined);
    tasks.hold(fence("l2"), true, undefined);
    const marked = tasks.markSettling("l1")!;
    expect(tasks.settleInFlight()).toBe(true);
    tasks.settleFailed(marked.held, 1000);
    expect(tasks.settleInFlight()).toBe(false);
    expect(tasks.renewableFences(1500, 1000).map((f) => f.leaseId)).toEqual(["l1", "l2"]);
    expect(tasks.renewableFences(2000, 1000).map((f) => f.leaseId)).toEqual(["l2"]);
    tasks.markSettling("l1"); // the worker retried
    expect(tasks.renewableFences(5000, 1000).map((f) => f.leaseId)).toEqual(["l1", "l2"]);
  });
});

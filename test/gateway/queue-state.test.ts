import { QueueState, before } from "../../gateway/src/scheduler/queue-state.js";

/** A queue's state as one gateway knows it: pure, no store. */
const BAND = 1000;
const at = (score: number, member = "m") => ({ score, member });

describe("QueueState", () => {
  test("pick: the lowest head not being claimed, bounded to the band of the best other head", () => {
    const q = new QueueState("ns", "lane");
    q.wake(0, at(1500));
    q.wake(1, at(1200));
    q.wake(2, at(3100));
    expect(q.pick("", BAND)).toEqual({ partition: 1, maxScore: 1999 }); // partition 0's head is in the same band
    q.inflight.set(1, null);
    expect(q.pick("", BAND)).toEqual({ partition: 0, maxScore: 1999 });
    q.inflight.set(0, null);
    expect(q.pick("", BAND)).toEqual({ partition: 2, maxScore: 3999 });
    q.inflight.set(2, null);
    expect(q.pick("", BAND)).toBeNull();
  });

  test("a lone head has no upper bound", () => {
    const q = new QueueState("ns", "lane");
    q.wake(3, at(5));
    expect(q.pick("", BAND)).toEqual({ partition: 3, maxScore: Infinity });
    const empty = new QueueState("ns", "lane");
    expect(empty.pick("", BAND)).toBeNull();
  });

  test("wakes keep the earliest position; ties break on the member", () => {
    const q = new QueueState("ns", "lane");
    q.wake(0, at(10, "b"));
    q.wake(0, at(20, "a"));
    q.wake(0, at(10, "a"));
    expect(q.heads.get(0)).toEqual(at(10, "a"));
    expect(before(at(10, "a"), at(10, "b"))).toBe(true);
    expect(before(at(10, "b"), at(10, "b"))).toBe(false);
  });

  test("settle: the claim's new head, merged with a wake that arrived while it was in flight", () => {
    const q = new QueueState("ns", "lane");
    q.wake(0, at(100));
    q.inflight.set(0, null);
    q.wake(0, at(50)); // newer work, earlier in line, while the claim runs
    q.settle(0, at(300), "", false, 1);
    expect(q.inflight.has(0)).toBe(false);
    expect(q.heads.get(0)).toEqual(at(50));
    q.inflight.set(0, null);
    q.settle(0, null, "", false, 1);
    expect(q.heads.has(0)).toBe(false); // emptied
  });

  test("only unmatched work left: skipped for that capability set until a wake", () => {
    const q = new QueueState("ns", "lane");
    q.wake(0, at(100));
    q.inflight.set(0, null);
    q.settle(0, at(100), "cpu", true, 0);
    expect(q.pick("cpu", BAND)).toBeNull();
    expect(q.pick("cpu,gpu", BAND)?.partition).toBe(0);
    q.wake(0, at(200));
    expect(q.pick("cpu", BAND)?.partition).toBe(0);
  });

  test("a safety scan never overrides a newer wake, nor a claim in flight", () => {
    const q = new QueueState("ns", "lane");
    q.wake(0, at(100), 7); // wake 7 arrived after the scan read (at wake 6)
    q.scanned(0, undefined, 6);
    expect(q.heads.get(0)).toEqual(at(100));
    q.scanned(0, undefined, 7); // read after wake 7: the work is gone
    expect(q.heads.has(0)).toBe(false);
    q.scanned(1, at(40), 7);
    expect(q.heads.get(1)).toEqual(at(40));
    q.inflight.set(1, null);
    q.scanned(1, undefined, 9);
    expect(q.heads.get(1)).toEqual(at(40));
  });
});

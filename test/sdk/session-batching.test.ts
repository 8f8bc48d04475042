import { create, toBinary } from "@bufbuild/protobuf";
import { SessionRequestSchema, SessionResponseSchema, type SessionRequest } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import {
  batchBytesFor, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, requestBatch, requestSize, responseSize, sessionOutbox,
} from "../../sdk-ts/src/transport/session-batching.js";
import { TurnBatcher } from "../../sdk-ts/src/transport/turn-batcher.js";

/** The Session outbox (a TurnBatcher): the messages of one event-loop turn travel as one. */
const ping = (n: number): SessionRequest => create(SessionRequestSchema, { requestId: `p${n}`, body: { case: "ping", value: { nonce: BigInt(n) } } });
const bigComplete = (bytes: number): SessionRequest =>
  create(SessionRequestSchema, { requestId: "big", body: { case: "complete", value: { result: new Uint8Array(bytes) } } });
const turn = () => new Promise((r) => setImmediate(r));
/** The request ids of each wire message (a batch lists its members). */
const ids = (m: SessionRequest): string[] => (m.body.case === "batch" ? m.body.value.requests.map((r) => r.requestId) : [m.requestId]);

function outbox(maxMessageBytes = 8 * 1024 * 1024): { box: TurnBatcher<SessionRequest>; wire: SessionRequest[] } {
  const wire: SessionRequest[] = [];
  return { box: sessionOutbox((m) => wire.push(m), requestBatch, requestSize, maxMessageBytes), wire };
}

test("messages of one turn go out together, in order, at the end of the turn; a lone one unwrapped", async () => {
  const { box, wire } = outbox();
  box.add(ping(1));
  box.add(ping(2));
  box.add(ping(3));
  expect(wire).toEqual([]);
  await turn();
  expect(wire.map(ids)).toEqual([["p1", "p2", "p3"]]);
  box.add(ping(4));
  await turn();
  expect(wire[1]!.body.case).toBe("ping");
});

test("a message too large to share a batch flushes what is pending first, then travels alone", async () => {
  const { box, wire } = outbox();
  box.add(ping(1));
  box.add(bigComplete(MAX_BATCH_BYTES));
  box.add(ping(2));
  expect(wire.map(ids)).toEqual([["p1"], ["big"]]);
  await turn();
  expect(wire.map(ids)).toEqual([["p1"], ["big"], ["p2"]]);
});

test("a batch never passes the byte bound nor the message bound, and order is kept", async () => {
  const { box, wire } = outbox();
  const third = Math.floor(MAX_BATCH_BYTES / 3);
  for (let i = 0; i < 4; i++) box.add(create(SessionRequestSchema, { requestId: `b${i}`, body: { case: "complete", value: { result: new Uint8Array(third) } } }));
  await turn();
  expect(wire.map(ids)).toEqual([["b0", "b1"], ["b2", "b3"]]);

  const counted: SessionRequest[] = [];
  const byCount = new TurnBatcher<SessionRequest>((batch) => counted.push(requestBatch(batch)), () => 1, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES);
  for (let i = 0; i < MAX_BATCH_MESSAGES + 5; i++) byCount.add(ping(i));
  await turn();
  expect(counted.map((m) => ids(m).length)).toEqual([MAX_BATCH_MESSAGES, 5]);
  expect(counted.flatMap(ids)).toEqual(Array.from({ length: MAX_BATCH_MESSAGES + 5 }, (_, i) => `p${i}`));
});

test("flush() sends what is pending at once (before a half-close)", () => {
  const { box, wire } = outbox();
  box.add(ping(1));
  box.flush();
  expect(wire.map(ids)).toEqual([["p1"]]);
  box.flush();
  expect(wire).toHaveLength(1);
});

test("the batch bound follows the stream's message limit: a quarter of it, at most 256 KiB", async () => {
  expect(batchBytesFor(8 * 1024 * 1024)).toBe(MAX_BATCH_BYTES);
  expect(batchBytesFor(128 * 1024)).toBe(32 * 1024);
  const { box, wire } = outbox(128 * 1024);
  for (let i = 0; i < 3; i++) box.add(create(SessionRequestSchema, { requestId: `r${i}`, body: { case: "complete", value: { result: new Uint8Array(20 * 1024) } } }));
  await turn();
  expect(wire.map(ids)).toEqual([["r0"], ["r1"], ["r2"]]); // two would pass 32 KiB
});

test("size estimates are never below the encoded size", () => {
  const samples: SessionRequest[] = [
    create(SessionRequestSchema, { requestId: "x".repeat(64), body: { case: "fail", value: { fence: { executionId: "15:01a22c74-e3ff-7000-9181-fe0fb104e923", leaseId: "0c7e7a4e-2b1f-4a57-9a1c-8f0a3c1b2d3e", leaseEpoch: 99n, attemptId: "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" }, reason: "失败".repeat(2000), category: "io", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "a=b" } } }),
    create(SessionRequestSchema, { requestId: "y", body: { case: "appendFrame", value: { frameType: "token", payload: new Uint8Array(1000), correlationId: "c".repeat(100), metadata: { model: "m".repeat(300) } } } }),
  ];
  for (const m of samples) expect(requestSize(m)).toBeGreaterThanOrEqual(toBinary(SessionRequestSchema, m).byteLength);
  const fence = { executionId: "15:01a22c74-e3ff-7000-9181-fe0fb104e923", leaseId: "0c7e7a4e-2b1f-4a57-9a1c-8f0a3c1b2d3e", leaseEpoch: 12345n, attemptId: "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" };
  const push = create(SessionResponseSchema, { body: { case: "tasks", value: { tasks: Array.from({ length: 64 }, () => ({
    fence, attemptIndex: 3, input: new Uint8Array(100), kind: "k".repeat(64), lane: "l".repeat(64), namespace: "n".repeat(64),
    priority: -1000, retryCount: 9, leaseExpiresAtMs: 1_800_000_000_000n, createdAtMs: 1_800_000_000_000n, deadlineAtMs: 1_800_000_000_000n,
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "vendor=value", tags: { tenant: "acme", 区域: "东" },
  })) } } });
  expect(responseSize(push)).toBeGreaterThanOrEqual(toBinary(SessionResponseSchema, push).byteLength);
});

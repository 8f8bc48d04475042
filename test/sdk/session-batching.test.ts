import { create } from "@bufbuild/protobuf";
import { SessionRequestSchema, type SessionRequest } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, Outbox, requestBatch, requestSize } from "../../sdk-ts/src/transport/session-batching.js";

/** The Session outbox: the messages of one event-loop turn travel as one. */
const ping = (n: number): SessionRequest => create(SessionRequestSchema, { requestId: `p${n}`, body: { case: "ping", value: { nonce: BigInt(n) } } });
const bigComplete = (bytes: number): SessionRequest =>
  create(SessionRequestSchema, { requestId: "big", body: { case: "complete", value: { result: new Uint8Array(bytes) } } });
const turn = () => new Promise((r) => setImmediate(r));
/** The request ids of each wire message (a batch lists its members). */
const ids = (m: SessionRequest): string[] => (m.body.case === "batch" ? m.body.value.requests.map((r) => r.requestId) : [m.requestId]);

function outbox(): { box: Outbox<SessionRequest>; wire: SessionRequest[] } {
  const wire: SessionRequest[] = [];
  return { box: new Outbox((m) => wire.push(m), requestBatch, requestSize), wire };
}

test("messages of one turn go out together, in order, at the end of the turn; a lone one unwrapped", async () => {
  const { box, wire } = outbox();
  box.send(ping(1));
  box.send(ping(2));
  box.send(ping(3));
  expect(wire).toEqual([]);
  await turn();
  expect(wire.map(ids)).toEqual([["p1", "p2", "p3"]]);
  box.send(ping(4));
  await turn();
  expect(wire[1]!.body.case).toBe("ping");
});

test("a message too large to share a batch flushes what is pending first, then travels alone", async () => {
  const { box, wire } = outbox();
  box.send(ping(1));
  box.send(bigComplete(MAX_BATCH_BYTES));
  box.send(ping(2));
  expect(wire.map(ids)).toEqual([["p1"], ["big"]]);
  await turn();
  expect(wire.map(ids)).toEqual([["p1"], ["big"], ["p2"]]);
});

test("a batch never passes the byte bound nor the message bound, and order is kept", async () => {
  const { box, wire } = outbox();
  const third = Math.floor(MAX_BATCH_BYTES / 3);
  for (let i = 0; i < 4; i++) box.send(create(SessionRequestSchema, { requestId: `b${i}`, body: { case: "complete", value: { result: new Uint8Array(third) } } }));
  await turn();
  expect(wire.map(ids)).toEqual([["b0", "b1"], ["b2", "b3"]]);

  const counted: SessionRequest[] = [];
  const byCount = new Outbox<SessionRequest>((m) => counted.push(m), requestBatch, () => 1);
  for (let i = 0; i < MAX_BATCH_MESSAGES + 5; i++) byCount.send(ping(i));
  await turn();
  expect(counted.map((m) => ids(m).length)).toEqual([MAX_BATCH_MESSAGES, 5]);
  expect(counted.flatMap(ids)).toEqual(Array.from({ length: MAX_BATCH_MESSAGES + 5 }, (_, i) => `p${i}`));
});

test("flush() sends what is pending at once (before a half-close)", () => {
  const { box, wire } = outbox();
  box.send(ping(1));
  box.flush();
  expect(wire.map(ids)).toEqual([["p1"]]);
  box.flush();
  expect(wire).toHaveLength(1);
});

import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { TailStreamRequestSchema, type TailStreamResponse } from "../../sdk-ts/src/gen/flowfabric/v1/stream_pb.js";
import type { Logger } from "../../gateway/src/logger.js";
import { StreamHandlers } from "../../gateway/src/rpc/stream-service.js";
import { connectTail } from "../../gateway/src/server/connect-tail.js";
import { FlowFabricClient, FlowFabricWorker } from "../../sdk-ts/src/index.js";
import { startHarness, type Harness } from "../support/gateway.js";

/**
 * The Connect TailStream adapter when its client goes away. connect-node throws a failed write
 * (ERR_STREAM_DESTROYED) into the response generator; that is a client leaving, not a gateway
 * bug, and must not be logged as an internal error (the gRPC listener already treats it so).
 */
let h: Harness;
let client: FlowFabricClient;
beforeAll(async () => {
  h = await startHarness();
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
});
afterAll(async () => {
  client.close();
  await h.stop();
});

function recordingLogger(errors: string[]): Logger {
  const logger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (msg) => { errors.push(msg); }, child: () => logger };
  return logger;
}

async function tailOfRunningTask(lane: string, errors: string[], signal: AbortSignal) {
  const go = new AbortController();
  const worker = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, workerId: `ct-${lane}`, lanes: [lane], maxConcurrentTasks: 1 });
  void worker.run(async (task) => {
    await task.appendFrame("log", "one");
    await new Promise((r) => go.signal.addEventListener("abort", r));
  });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  const streams = new StreamHandlers(h.gateway.engine, { partitions: h.gateway.engine.partitions, maxPayloadBytes: 1 << 20, frames: {} as never }, h.gateway.tails);
  const gen = connectTail(streams, create(TailStreamRequestSchema, { executionId, attemptIndex: 0 }), { signal } as HandlerContext, recordingLogger(errors), "addr:test");
  return { gen, stop: async () => { go.abort(); await worker.close({ graceMs: 0 }); } };
}

test("a failed write thrown in by the transport (ERR_STREAM_DESTROYED) ends the tail as Canceled and logs nothing", async () => {
  const errors: string[] = [];
  const { gen, stop } = await tailOfRunningTask("connect-tail-write", errors, new AbortController().signal);
  const first = await gen.next();
  expect((first.value as TailStreamResponse).frames.map((f) => Buffer.from(f.payload).toString())).toEqual(["one"]);
  // What connect-node does when writing that message fails: the client is gone.
  const destroyed = Object.assign(new Error("Cannot call write after a stream was destroyed"), { code: "ERR_STREAM_DESTROYED" });
  const thrown = await gen.throw(destroyed).catch((e: unknown) => e);
  expect(thrown).toBeInstanceOf(ConnectError);
  expect((thrown as ConnectError).code).toBe(Code.Canceled);
  expect(errors).toEqual([]);
  expect(h.gateway.tails.active).toBe(0);
  await stop();
});

test("the call's signal aborting while the tail waits ends the generator (no tail left waiting forever)", async () => {
  const errors: string[] = [];
  const ac = new AbortController();
  const { gen, stop } = await tailOfRunningTask("connect-tail-abort", errors, ac.signal);
  await gen.next(); // the frame; the generator then waits for more
  const next = gen.next();
  ac.abort();
  await expect(next).resolves.toEqual({ done: true, value: undefined });
  expect(errors).toEqual([]);
  expect(h.gateway.tails.active).toBe(0);
  await stop();
});

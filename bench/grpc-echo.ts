/**
 * `npx tsx bench/grpc-echo.ts`: the floor of the worker hop, and what batching would save. A
 * grpc-js bidi Session stream between this process and a child process, with the gateway's
 * generated messages and serializers:
 *   - one item per message: the client sends `CompleteTaskRequest`s (window W in flight), the
 *     server answers each with a `CompleteTaskResponse`;
 *   - K items per message: a `TaskAck` carrying K lease ids, answered by a `HeartbeatAck` with K
 *     lease statuses (a stand-in for K settles and their answers in one message each way).
 * Prints items/s and the CPU each side spends per item.
 */
import { fork } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  CompleteTaskRequestSchema, CompleteTaskResponseSchema, FenceSchema, grpcServiceDefinition, HeartbeatAckSchema, LeaseStatusSchema,
  SessionRequestSchema, SessionResponseSchema, TaskAckSchema, WorkerService, type SessionRequest, type SessionResponse,
} from "@flowfabric/sdk/wire";
import { processCpuMicros } from "./cpu.js";

const definition = grpcServiceDefinition(WorkerService);
const ITEMS = 60_000;
const EXECUTION_ID = "3:01a22c6f-df26-7000-ad76-1c824a9c3182";
const LEASE_ID = "0c7e7a4e-2b1f-4a57-9a1c-8f0a3c1b2d3e";

function serve(): void {
  const server = new grpc.Server();
  server.addService(definition, {
    session: (call: grpc.ServerDuplexStream<SessionRequest, SessionResponse>) => {
      call.on("data", (m: SessionRequest) => {
        if (m.body.case === "ack") {
          const leases = m.body.value.leaseIds.map((leaseId) => create(LeaseStatusSchema, { executionId: EXECUTION_ID, leaseId, renewed: true, leaseExpiresAtMs: 1n }));
          call.write(create(SessionResponseSchema, { body: { case: "heartbeatAck", value: create(HeartbeatAckSchema, { leases }) } }));
        } else {
          call.write(create(SessionResponseSchema, { requestId: m.requestId, body: { case: "complete", value: create(CompleteTaskResponseSchema, {}) } }));
        }
      });
      call.on("end", () => call.end());
    },
  });
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!(port);
  });
}

/** Runs ITEMS items through one stream, `perMessage` per message, `window` items in flight. */
async function run(client: grpc.Client, serverPid: number, window: number, perMessage: number): Promise<void> {
  const method = definition["session"]!;
  const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
  const fence = create(FenceSchema, { executionId: EXECUTION_ID, leaseId: LEASE_ID, leaseEpoch: 1n, attemptId: "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" });
  const leaseIds = Array.from({ length: perMessage }, (_, i) => `${LEASE_ID.slice(0, -2)}${String(i).padStart(2, "0")}`);
  let sent = 0;
  let answered = 0;
  const send = (): void => {
    if (perMessage === 1) {
      call.write(create(SessionRequestSchema, { requestId: String(sent), body: { case: "complete", value: create(CompleteTaskRequestSchema, { fence }) } }));
    } else {
      call.write(create(SessionRequestSchema, { body: { case: "ack", value: create(TaskAckSchema, { leaseIds }) } }));
    }
    sent += perMessage;
  };
  const done = new Promise<void>((resolve) => call.on("data", (m: SessionResponse) => {
    answered += m.body.case === "heartbeatAck" ? m.body.value.leases.length : 1;
    while (sent - answered < window && sent < ITEMS) send();
    if (answered >= ITEMS) resolve();
  }));
  const server0 = processCpuMicros(serverPid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  while (sent < window) send();
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const client1 = process.cpuUsage();
  const server1 = processCpuMicros(serverPid);
  const ended = new Promise((resolve) => call.on("status", resolve));
  call.end();
  await ended;
  console.log(JSON.stringify({
    window, itemsPerMessage: perMessage,
    itemsPerSec: Math.round(answered / seconds),
    clientCpuUsPerItem: +((client1.user + client1.system - client0.user - client0.system) / answered).toFixed(1),
    serverCpuUsPerItem: +((server1 - server0) / answered).toFixed(1),
  }));
}

async function measure(): Promise<void> {
  const child = fork(__filename, ["serve"], { execArgv: ["--import", "tsx"] });
  const port = await new Promise<number>((resolve) => child.once("message", (p) => resolve(p as number)));
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  for (const window of [1, 10, 100]) await run(client, child.pid!, window, 1);
  for (const perMessage of [5, 10]) await run(client, child.pid!, 100, perMessage);
  client.close();
  child.kill();
}

if (process.argv[2] === "serve") serve();
else measure().catch((err: unknown) => { console.error(err); process.exit(1); });

/**
 * `npx tsx bench/grpc-echo.ts`: the floor of the worker hop. A grpc-js bidi Session stream
 * between this process and a child process, with the same generated messages and serializers
 * as the gateway: the client sends `CompleteTaskRequest`s (W in flight), the server answers each
 * with a `CompleteTaskResponse`. Prints round trips/s and the CPU each side spends per round trip.
 */
import { fork } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { FenceSchema } from "../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import {
  CompleteTaskRequestSchema, CompleteTaskResponseSchema, SessionRequestSchema, SessionResponseSchema, WorkerService, type SessionRequest,
} from "../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { grpcServiceDefinition } from "../sdk-ts/src/transport/grpc-service.js";
import { processCpuMicros } from "./cpu.js";

const definition = grpcServiceDefinition(WorkerService);
const ROUND_TRIPS = 50_000;

function serve(): void {
  const server = new grpc.Server();
  server.addService(definition, {
    session: (call: grpc.ServerDuplexStream<SessionRequest, unknown>) => {
      call.on("data", (m: SessionRequest) =>
        call.write(create(SessionResponseSchema, { requestId: m.requestId, body: { case: "complete", value: create(CompleteTaskResponseSchema, {}) } })));
      call.on("end", () => call.end());
    },
  });
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!(port);
  });
}

async function measure(): Promise<void> {
  const child = fork(__filename, ["serve"], { execArgv: ["--import", "tsx"] });
  const port = await new Promise<number>((resolve) => child.once("message", (p) => resolve(p as number)));
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const fence = create(FenceSchema, {
    executionId: "3:01a22c6f-df26-7000-ad76-1c824a9c3182", leaseId: "0c7e7a4e-2b1f-4a57-9a1c-8f0a3c1b2d3e",
    leaseEpoch: 1n, attemptId: "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
  });
  const method = definition["session"]!;
  for (const window of [1, 10, 100]) {
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
    let sent = 0;
    let answered = 0;
    const send = (): void => {
      sent++;
      call.write(create(SessionRequestSchema, { requestId: String(sent), body: { case: "complete", value: create(CompleteTaskRequestSchema, { fence }) } }));
    };
    const done = new Promise<void>((resolve) => call.on("data", () => {
      if (sent < ROUND_TRIPS) send();
      if (++answered === ROUND_TRIPS) resolve();
    }));
    const server0 = processCpuMicros(child.pid!);
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < window; i++) send();
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const client1 = process.cpuUsage();
    const server1 = processCpuMicros(child.pid!);
    const ended = new Promise((resolve) => call.on("status", resolve));
    call.end();
    await ended;
    console.log(JSON.stringify({
      window,
      roundTripsPerSec: Math.round(ROUND_TRIPS / seconds),
      clientCpuUsPerRoundTrip: +((client1.user + client1.system - client0.user - client0.system) / ROUND_TRIPS).toFixed(1),
      serverCpuUsPerRoundTrip: +((server1 - server0) / ROUND_TRIPS).toFixed(1),
    }));
  }
  client.close();
  child.kill();
}

if (process.argv[2] === "serve") serve();
else measure().catch((err: unknown) => { console.error(err); process.exit(1); });

/**
 * `npx tsx bench/idle-sessions.ts [sessions=10000] [measureMs=30000] [ping|heartbeat]`: what idle
 * worker sessions cost one gateway. Starts a server, a gateway in its own process (default
 * timings: heartbeat every 10 s, keepalive 15 s) and, in this process, `sessions` Session streams
 * over 20 HTTP/2 connections that hold no task: each sends its Hello, then what an idle worker
 * sends — `ping` (default; what the TypeScript SDK does: no heartbeat while it holds no task, a
 * ping every `keepalive_interval_ms`) or `heartbeat` (a heartbeat every `heartbeat_interval_ms`,
 * as a worker that always heartbeats does) — with phases spread evenly, and answers pings. Once
 * all are welcomed and one period has passed,
 * it reads the gateway's CPU time over `measureMs` and prints its share of one core, the CPU per
 * heartbeat (its whole CPU over the heartbeats sent), and its RSS. Extra node flags for the
 * gateway (e.g. "--cpu-prof") go in BENCH_GATEWAY_NODE_ARGS.
 */
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { startServerProcess } from "../gateway/src/embedded/server-process.js";
import {
  SessionRequestSchema, WorkerService, type SessionRequest, type SessionResponse,
} from "../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { grpcClientConstructor } from "../sdk-ts/src/transport/grpc-service.js";
import { processCpuMicros } from "./cpu.js";
import { startGatewayProcess } from "./gateway-process.js";

const CONNECTIONS = 20;

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
  return kb / 1024;
}

interface Idle {
  readonly call: grpc.ClientDuplexStream<SessionRequest, SessionResponse>;
  /** Resolves with the Welcome's heartbeat and keepalive intervals, in ms. */
  readonly welcomed: Promise<{ heartbeatMs: number; keepaliveMs: number }>;
}

function openSession(client: grpc.Client, i: number): Idle {
  const call = (client as unknown as { session(): grpc.ClientDuplexStream<SessionRequest, SessionResponse> }).session();
  call.on("error", () => undefined);
  const welcomed = new Promise<{ heartbeatMs: number; keepaliveMs: number }>((resolve, reject) => {
    call.on("data", (m: SessionResponse) => {
      const messages = m.body.case === "batch" ? m.body.value.responses : [m];
      for (const r of messages) {
        if (r.body.case === "welcome") resolve({ heartbeatMs: Number(r.body.value.heartbeatIntervalMs), keepaliveMs: Number(r.body.value.keepaliveIntervalMs) });
        else if (r.body.case === "ping") call.write(create(SessionRequestSchema, { body: { case: "pong", value: { nonce: r.body.value.nonce } } }));
      }
    });
    call.on("status", (s: grpc.StatusObject) => reject(new Error(`session ${i} ended: ${s.code} ${s.details}`)));
  });
  call.write(create(SessionRequestSchema, { body: { case: "hello", value: { workerId: "idle", instanceId: `idle-${i}`, lanes: ["idle"], maxConcurrentTasks: 10 } } }));
  return { call, welcomed };
}

async function main(): Promise<void> {
  const sessions = Number(process.argv[2] ?? 10_000);
  const measureMs = Number(process.argv[3] ?? 30_000);
  const mode = process.argv[4] ?? "ping";
  if (mode !== "ping" && mode !== "heartbeat") throw new Error(`mode must be ping or heartbeat, got ${mode}`);
  const dataDir = mkdtempSync(join(tmpdir(), "ff-idle-"));
  const server = await startServerProcess({ port: 0, dataDir, persistence: false });
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
  const gateway = await startGatewayProcess(server.url, {}, nodeArgs);
  const Ctor = grpcClientConstructor(WorkerService);
  const clients = Array.from({ length: CONNECTIONS }, (_, c) => new Ctor(gateway.grpcAddress, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1, "grpc.bench_connection": c, "grpc.max_receive_message_length": 16 * 1024 * 1024,
  }) as grpc.Client);
  const timers: NodeJS.Timeout[] = [];
  let sent = 0;
  try {
    const open: Idle[] = [];
    for (let i = 0; i < sessions; i++) {
      open.push(openSession(clients[i % CONNECTIONS]!, i));
      if (i % 500 === 499) await Promise.all(open.slice(i - 499, i + 1).map((s) => s.welcomed));
    }
    const timing = (await Promise.all(open.map((s) => s.welcomed)))[0]!;
    const intervalMs = mode === "ping" ? timing.keepaliveMs : timing.heartbeatMs;
    const message = (): SessionRequest => create(SessionRequestSchema, mode === "ping"
      ? { body: { case: "ping", value: { nonce: BigInt(sent) } } }
      : { body: { case: "heartbeat", value: { sentAtMs: BigInt(Date.now()) } } });
    open.forEach((s, i) => {
      const beat = (): void => { sent++; s.call.write(message()); };
      timers.push(setTimeout(() => { beat(); timers.push(setInterval(beat, intervalMs)); }, Math.floor((i / sessions) * intervalMs)));
    });
    await new Promise((r) => setTimeout(r, intervalMs));
    const cpu0 = processCpuMicros(gateway.pid);
    const sent0 = sent;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, measureMs));
    const cpuMicros = processCpuMicros(gateway.pid) - cpu0;
    const elapsedMs = performance.now() - t0;
    const messages = sent - sent0;
    console.log(`| sessions | each idle session sends | gateway CPU (% of a core) | gateway CPU per message received | gateway RSS |`);
    console.log(`|---|---|---|---|---|`);
    console.log(`| ${sessions} | a ${mode} every ${intervalMs} ms | ${(cpuMicros / (elapsedMs * 10)).toFixed(2)} % | ${(cpuMicros / Math.max(1, messages)).toFixed(1)} µs | ${rssMiB(gateway.pid).toFixed(0)} MiB |`);
  } finally {
    for (const t of timers) clearInterval(t);
    for (const c of clients) c.close();
    await gateway.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

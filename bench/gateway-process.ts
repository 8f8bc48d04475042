import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { resolve } from "node:path";

/** A gateway running in its own process (as deployed), started by `npm start`'s entry point. */
export interface GatewayProcess {
  readonly grpcAddress: string;
  /** Process id of the gateway. */
  readonly pid: number;
  /** SIGTERM (drain), then wait for exit. */
  close(): Promise<void>;
}

const MAIN = resolve(__dirname, "../gateway/src/main.ts");

/** Spawns gateway/src/main.ts against `valkeyUrl` on free ports; resolves once it serves. */
export function startGatewayProcess(valkeyUrl: string, env: Record<string, string> = {}, nodeArgs: readonly string[] = []): Promise<GatewayProcess> {
  // tsx first: node arguments may --import TypeScript (bench/tracing-preload.mjs does).
  const child = spawn(process.execPath, ["--import", "tsx", ...nodeArgs, MAIN], {
    env: { ...process.env, ...env, VALKEY_URL: valkeyUrl, FLOWFABRIC_GRPC_PORT: "0", FLOWFABRIC_HTTP_PORT: "0", FLOWFABRIC_DRAIN_GRACE_MS: "1000" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return new Promise((resolveStart, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const fail = (): void => reject(new Error(`gateway process exited before serving:\n${stderr}`));
    child.once("exit", fail);
    lines.on("line", (line) => {
      const m = /gRPC \(workers, gRPC clients\):\s+(\S+)/.exec(line);
      if (!m) return;
      child.off("exit", fail);
      resolveStart({
        grpcAddress: m[1]!,
        pid: child.pid!,
        close: async () => {
          child.kill("SIGTERM");
          const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(force);
        },
      });
    });
  });
}

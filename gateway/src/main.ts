/**
 * `npm start`: runs one gateway. With VALKEY_URL unset it spawns its own valkey-server or
 * redis-server (127.0.0.1, AOF everysec in FLOWFABRIC_DATA_DIR) and stops it on exit.
 */
import { join } from "node:path";
import { compileOptions, optionsFromEnv, serverBinaryFromEnv, telemetryFromEnv, waitpointSecretFromEnv, type GatewayOptions } from "./config.js";
import { startServerProcess, type ServerProcess } from "./embedded/server-process.js";
import { findServerBinary, INSTALL_HINT } from "./embedded/server-binary.js";
import { startGateway } from "./gateway.js";
import { createLogger } from "./logger.js";
import { setupTelemetry } from "./telemetry/otel-setup.js";

async function main(): Promise<void> {
  const log = createLogger("info");
  // Last line of defence: every handler catches what a client can cause, but should anything still
  // escape, it is logged and the gateway keeps serving everyone else.
  process.on("unhandledRejection", (reason) => log.error("unhandled rejection (kept running)", { err: String(reason), stack: reason instanceof Error ? reason.stack : undefined }));
  process.on("uncaughtException", (err) => log.error("uncaught exception (kept running)", { err: String(err), stack: err.stack }));
  const options = compileOptions(optionsFromEnv());
  const telemetry = setupTelemetry(telemetryFromEnv(), log);
  let embedded: ServerProcess | undefined;
  let valkeyUrl = options.valkeyUrl;
  if (!valkeyUrl) {
    const binary = findServerBinary(serverBinaryFromEnv());
    if (!binary) {
      process.stderr.write(`${INSTALL_HINT}\n`);
      process.exit(1);
    }
    embedded = await startServerProcess({ binary, port: 0, dataDir: join(options.dataDir, "valkey"), persistence: true });
    valkeyUrl = embedded.url;
    log.info("embedded server started", { binary, url: valkeyUrl, pid: embedded.pid, dataDir: join(options.dataDir, "valkey") });
  }
  let gateway;
  try {
    gateway = await startGateway({
      ...options, valkeyUrl, logger: log, metricReaders: telemetry.metricReaders, resource: telemetry.resource,
      waitpointSecretHex: waitpointSecretFromEnv(),
    });
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
  process.stdout.write(
    `FlowFabric gateway ${gateway.options.gatewayId}\n` +
      `  gRPC (workers, gRPC clients):         ${gateway.grpcAddress}\n` +
      `  HTTP (Connect JSON, gRPC-Web, health): ${gateway.httpAddress}\n` +
      `  metrics (Prometheus):                 ${gateway.httpAddress}/metrics${gateway.options.metricsAuth === "token" ? " (bearer token)" : ""}\n` +
      `  auth:                                 ${authSummary(gateway.options)}\n` +
      `  store:                                ${embedded ? `embedded ${embedded.binary} at ${valkeyUrl}` : valkeyUrl}\n`,
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    const g = gateway;
    g.close()
      .then(() => telemetry.shutdown())
      .then(() => embedded?.stop())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error("shutdown failed", { err: String(err) });
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function authSummary(o: GatewayOptions): string {
  const tls = o.tlsCertFile === "" ? "no TLS" : o.tlsClientCaFile === "" ? "TLS" : "TLS with client certificates (mTLS)";
  if (o.authTokens.length === 0) return `off (anyone who can reach ${o.host}), ${tls}`;
  return `${o.authTokens.length} bearer token(s), ${tls}`;
}

main().catch((err: unknown) => {
  process.stderr.write(`flowfabric: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

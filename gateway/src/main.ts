/**
 * `npm start`: runs one gateway. With VALKEY_URL unset it spawns its own valkey-server or
 * redis-server (127.0.0.1, AOF everysec, a generated password) in FLOWFABRIC_DATA_DIR — a folder
 * created 0700 and locked against a second gateway — and stops it last on exit.
 *
 * Shutdown (SIGTERM, SIGINT): the gateway drains (Drain to every worker, in-flight operations get
 * FLOWFABRIC_DRAIN_GRACE_MS), then the embedded server stops. The server runs in its own process
 * group, so a terminal's Ctrl-C reaches only the gateway; the whole shutdown is bounded (grace +
 * SHUTDOWN_SLACK_MS), and a second signal exits at once.
 */
import { join } from "node:path";
import { compileOptions, logLevelFromEnv, optionsFromEnv, serverBinaryFromEnv, telemetryFromEnv, waitpointSecretFromEnv, type GatewayOptions } from "./config.js";
import { openDataDir, type DataDir } from "./embedded/data-dir.js";
import { startServerProcess, type ServerProcess } from "./embedded/server-process.js";
import { findServerBinary, INSTALL_HINT } from "./embedded/server-binary.js";
import { startGateway, type Gateway } from "./gateway.js";
import { createLogger, type Logger } from "./logger.js";
import { redact, registerSecret } from "./secrets.js";
import { setupTelemetry } from "./telemetry/otel-setup.js";

/** Time allowed beyond the drain grace for the rest of the shutdown (listeners, store), in ms. */
const SHUTDOWN_SLACK_MS = 5_000;

/** Cleanups that must run however the process ends (lock file, embedded server). */
const onExit: (() => void)[] = [];
process.on("exit", () => { for (const fn of onExit.splice(0)) fn(); });

async function main(): Promise<void> {
  const log = createLogger(logLevelFromEnv());
  // Before anything starts: a signal during start-up ends it too (the exit clean-ups run).
  const signals = handleSignals(log);
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
    const dir: DataDir = openDataDir(options.dataDir);
    onExit.push(dir.release);
    registerSecret(dir.password);
    const serverDir = join(options.dataDir, "valkey");
    embedded = await startServerProcess({ binary, port: 0, dataDir: serverDir, persistence: true, password: dir.password, detached: true });
    // An exit that skipped the orderly stop: the detached server still stops (SIGTERM: it flushes its AOF).
    onExit.push(embedded.terminate);
    valkeyUrl = embedded.url;
    log.info("embedded server started", { binary, url: valkeyUrl, pid: embedded.pid, dataDir: serverDir });
  }
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      ...options, valkeyUrl, logger: log, metricReaders: telemetry.metricReaders, resource: telemetry.resource,
      waitpointSecretHex: waitpointSecretFromEnv(),
    });
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
  process.stdout.write(redact(
    `FlowFabric gateway ${gateway.options.gatewayId}\n` +
      `  gRPC (workers, gRPC clients):         ${gateway.grpcAddress}\n` +
      `  HTTP (Connect JSON, gRPC-Web, health): ${gateway.httpAddress}\n` +
      `  health (liveness, readiness):         ${gateway.httpAddress}/healthz ${gateway.httpAddress}/readyz\n` +
      `  metrics (Prometheus):                 ${gateway.httpAddress}/metrics${gateway.options.metricsAuth === "token" ? " (bearer token)" : ""}\n` +
      `  auth:                                 ${authSummary(gateway.options)}\n` +
      `  store:                                ${embedded ? `embedded ${embedded.binary} at ${valkeyUrl}` : valkeyUrl}\n`,
  ));
  signals.serving(options.drainGraceMs, async () => {
    await gateway.close();
    await telemetry.shutdown();
    await embedded?.stop(); // last: the drain above still needed it
  });
}

/**
 * SIGTERM/SIGINT, installed first: before the gateway serves, a signal exits (status 1, clean-ups
 * run); once `serving` was called, it drains, bounded; a second signal (or the bound) exits at once.
 */
function handleSignals(log: Logger): { serving(graceMs: number, shutdown: () => Promise<void>): void } {
  let stopping = false;
  let drain: { graceMs: number; shutdown: () => Promise<void> } | undefined;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn("second signal: exiting without waiting for the drain", { signal });
      process.exit(1);
    }
    stopping = true;
    if (!drain) {
      log.info("signal during start-up: exiting", { signal });
      process.exit(1);
    }
    const { graceMs, shutdown } = drain;
    log.info("shutting down: draining", { signal, graceMs });
    const bound = setTimeout(() => {
      log.error("shutdown did not finish in time; exiting", { boundMs: graceMs + SHUTDOWN_SLACK_MS });
      process.exit(1);
    }, graceMs + SHUTDOWN_SLACK_MS);
    bound.unref();
    shutdown()
      .then(() => {
        log.info("stopped");
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error("shutdown failed", { err: String(err) });
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  return { serving: (graceMs, shutdown) => { drain = { graceMs, shutdown }; } };
}

function authSummary(o: GatewayOptions): string {
  const tls = o.tlsCertFile === "" ? "no TLS" : o.tlsClientCaFile === "" ? "TLS" : "TLS with client certificates (mTLS)";
  if (o.authTokens.length === 0) return `off (anyone who can reach ${o.host}), ${tls}`;
  return `${o.authTokens.length} bearer token(s), ${tls}`;
}

main().catch((err: unknown) => {
  process.stderr.write(`flowfabric: ${redact(err instanceof Error ? err.message : String(err))}\n`);
  process.exit(1);
});

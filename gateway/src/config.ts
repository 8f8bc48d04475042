import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { compileTokens, parseTokenFile, parseTokenList, type TokenSpec } from "./auth/tokens.js";
import { isLogLevel, LOG_LEVELS, type LogLevel } from "./logger.js";

/** Gateway options. Units are in the names; every field has a default (see {@link DEFAULTS}). */
export interface GatewayOptions {
  /** Address both listeners bind to. */
  readonly host: string;
  /** gRPC (HTTP/2 cleartext) port for workers and gRPC clients; 0 picks a free port. */
  readonly grpcPort: number;
  /** HTTP/1.1 port for Connect JSON, gRPC-Web and /healthz; 0 picks a free port. */
  readonly httpPort: number;
  /** Valkey/Redis URL, or several comma-separated cluster seeds. Empty: embedded server (main.ts only). */
  readonly valkeyUrl: string;
  /** Folder of the embedded server's data (AOF). */
  readonly dataDir: string;
  /** Execution partitions; fixed at first boot of a deployment. */
  readonly partitions: number;
  /** Lease time-to-live. */
  readonly leaseTtlMs: number;
  /** Heartbeat interval announced to workers. */
  readonly heartbeatIntervalMs: number;
  /** Idle time after which a Ping is sent on a session. */
  readonly keepaliveIntervalMs: number;
  /** HTTP/2 PING interval and ack timeout for dead-peer detection. */
  readonly http2PingIntervalMs: number;
  readonly http2PingTimeoutMs: number;
  /** Largest accepted message. */
  readonly maxMessageBytes: number;
  /** Largest accepted input/result payload. */
  readonly maxPayloadBytes: number;
  /** Time given to in-flight operations after Drain before streams are closed. */
  readonly drainGraceMs: number;
  /** Most executions granted by one claim call. */
  readonly claimBatchMax: number;
  /** Safety-net scan of every partition's lane heads. */
  readonly safetyScanIntervalMs: number;
  /** Scanner intervals. */
  readonly leaseScanIntervalMs: number;
  readonly delayedScanIntervalMs: number;
  readonly timeoutScanIntervalMs: number;
  /** Items per scanner FCALL. */
  readonly scanBatch: number;
  /**
   * Retention of ended executions (completed, failed, cancelled, expired), in ms after they ended:
   * the record, payloads, attempts and frame streams are then deleted. 0 keeps them forever.
   */
  readonly retentionMs: number;
  /** Retention scanner interval. */
  readonly retentionScanIntervalMs: number;
  /** Identity of this gateway process. */
  readonly gatewayId: string;
  /** Largest output frame: type + payload + correlation id + encoded metadata, in bytes. */
  readonly maxFrameBytes: number;
  /** Durable frame streams: most frames per attempt (an append beyond is refused, nothing is dropped). */
  readonly maxStreamFrames: number;
  /** Durable frame streams: most frame bytes per attempt. */
  readonly maxStreamBytes: number;
  /** Summary frame streams: largest summary document, in bytes. */
  readonly maxSummaryBytes: number;
  /** Most concurrent TailStream calls on this gateway; beyond it RESOURCE_EXHAUSTED. */
  readonly maxTails: number;
  /** Most concurrent TailStream calls of one client (its bearer token, else its address); beyond it RESOURCE_EXHAUSTED. */
  readonly maxTailsPerClient: number;
  /** Most concurrent Session streams on one HTTP/2 connection; beyond it RESOURCE_EXHAUSTED. */
  readonly maxSessionsPerConnection: number;
  /** A tail with nothing to send for this long gets an empty keepalive message, in ms. */
  readonly tailKeepaliveMs: number;
  /** A tail on a stream that has no frame yet re-checks whether its attempt ended this often, in ms. */
  readonly tailRecheckMs: number;
  /** Longest XREAD BLOCK of a partition's tail reader before it re-issues, in ms. */
  readonly tailBlockMs: number;
  /**
   * Bearer tokens (docs/security.md). Empty: no authentication, which is allowed on a loopback
   * `host` only (or with `allowInsecure`). Compiled: secrets replaced by their SHA-256.
   */
  readonly authTokens: readonly TokenSpec[];
  /** `GET /metrics`: "open", or "token" (a token with the metrics or operator role). Default: "token" when tokens are configured, else "open". */
  readonly metricsAuth: "open" | "token";
  /** Serve without tokens on a non-loopback `host` anyway (FLOWFABRIC_ALLOW_INSECURE=1). */
  readonly allowInsecure: boolean;
  /** PEM certificate chain of both listeners; with `tlsKeyFile`, both listeners speak TLS only. Empty: cleartext. */
  readonly tlsCertFile: string;
  /** PEM private key of `tlsCertFile`. */
  readonly tlsKeyFile: string;
  /** PEM CA bundle: when set, both listeners require a client certificate it signed (mTLS). */
  readonly tlsClientCaFile: string;
  /** Suspension-timeout scanner interval. */
  readonly suspensionScanIntervalMs: number;
  /** Signals one execution may receive (all its waitpoints together). */
  readonly maxSignalsPerExecution: number;
  /** Largest signal payload, in bytes. */
  readonly maxSignalPayloadBytes: number;
  /** Waitpoints one execution may ever have. */
  readonly maxWaitpointsPerExecution: number;
  /** Longest (and default) pending-waitpoint lifetime, in ms. */
  readonly maxPendingWaitpointMs: number;
  /** How long tokens of a rotated-out waitpoint key stay valid when a rotation does not say, in ms. */
  readonly waitpointKeyGraceMs: number;
  /** How often a gateway re-reads the shared waitpoint keyring, in ms (also re-read on an unknown key id). */
  readonly keyringRefreshMs: number;
  /** Accept a store whose maxmemory-policy may evict keys (a warning instead of a refusal to start). */
  readonly allowEviction: boolean;
  /** Bound of the store probe behind GET /readyz, in ms. */
  readonly readyTimeoutMs: number;
}

export const DEFAULTS: GatewayOptions = Object.freeze({
  host: "127.0.0.1",
  grpcPort: 50051,
  httpPort: 8080,
  valkeyUrl: "",
  dataDir: "./.flowfabric",
  partitions: 16,
  leaseTtlMs: 30_000,
  heartbeatIntervalMs: 10_000,
  keepaliveIntervalMs: 15_000,
  http2PingIntervalMs: 10_000,
  http2PingTimeoutMs: 5_000,
  maxMessageBytes: 8 * 1024 * 1024,
  maxPayloadBytes: 4 * 1024 * 1024,
  drainGraceMs: 10_000,
  claimBatchMax: 64,
  safetyScanIntervalMs: 2_000,
  leaseScanIntervalMs: 1_000,
  delayedScanIntervalMs: 100,
  timeoutScanIntervalMs: 250,
  scanBatch: 200,
  retentionMs: 7 * 24 * 3600 * 1000,
  retentionScanIntervalMs: 10_000,
  gatewayId: "",
  maxFrameBytes: 64 * 1024,
  maxStreamFrames: 100_000,
  maxStreamBytes: 256 * 1024 * 1024,
  maxSummaryBytes: 1024 * 1024,
  maxTails: 1000,
  maxTailsPerClient: 512,
  maxSessionsPerConnection: 1000,
  tailKeepaliveMs: 15_000,
  tailRecheckMs: 1_000,
  tailBlockMs: 5_000,
  authTokens: [],
  metricsAuth: "open",
  allowInsecure: false,
  tlsCertFile: "",
  tlsKeyFile: "",
  tlsClientCaFile: "",
  suspensionScanIntervalMs: 250,
  maxSignalsPerExecution: 1000,
  maxSignalPayloadBytes: 64 * 1024,
  maxWaitpointsPerExecution: 64,
  maxPendingWaitpointMs: 7 * 24 * 3600 * 1000,
  waitpointKeyGraceMs: 24 * 3600 * 1000,
  keyringRefreshMs: 5_000,
  allowEviction: false,
  readyTimeoutMs: 1_000,
});

/** Compiles options: defaults filled, values checked, object frozen. */
export function compileOptions(partial: Partial<GatewayOptions> = {}): GatewayOptions {
  const o: GatewayOptions = { ...DEFAULTS, ...stripUndefined(partial) };
  const positive: (keyof GatewayOptions)[] = [
    "partitions", "leaseTtlMs", "heartbeatIntervalMs", "keepaliveIntervalMs", "http2PingIntervalMs", "http2PingTimeoutMs",
    "maxMessageBytes", "maxPayloadBytes", "claimBatchMax", "safetyScanIntervalMs", "leaseScanIntervalMs",
    "delayedScanIntervalMs", "timeoutScanIntervalMs", "scanBatch", "retentionScanIntervalMs",
    "maxFrameBytes", "maxStreamFrames", "maxStreamBytes", "maxSummaryBytes", "maxTails", "maxTailsPerClient", "maxSessionsPerConnection", "readyTimeoutMs", "tailKeepaliveMs",
    "tailRecheckMs", "tailBlockMs", "suspensionScanIntervalMs", "maxSignalsPerExecution", "maxSignalPayloadBytes",
    "maxWaitpointsPerExecution", "maxPendingWaitpointMs", "keyringRefreshMs",
  ];
  for (const k of positive) {
    const v = o[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new Error(`${optionName(k)} must be a positive integer, got ${String(v)}`);
  }
  for (const k of ["grpcPort", "httpPort", "drainGraceMs", "retentionMs", "waitpointKeyGraceMs"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 0) throw new Error(`${optionName(k)} must be a non-negative integer, got ${o[k]}`);
  }
  if (o.retentionMs > Number.MAX_SAFE_INTEGER) throw new Error(`${optionName("retentionMs")} must be <= ${Number.MAX_SAFE_INTEGER}, got ${o.retentionMs}`);
  if (o.partitions > 4096) throw new Error(`${optionName("partitions")} must be <= 4096, got ${o.partitions}`);
  if (o.maxPayloadBytes >= o.maxMessageBytes) throw new Error(`${optionName("maxPayloadBytes")} must be below ${optionName("maxMessageBytes")}`);
  if (o.maxFrameBytes >= o.maxMessageBytes) throw new Error(`${optionName("maxFrameBytes")} must be below ${optionName("maxMessageBytes")}`);
  if (o.maxSignalPayloadBytes >= o.maxMessageBytes) throw new Error(`${optionName("maxSignalPayloadBytes")} must be below ${optionName("maxMessageBytes")}`);
  if (o.heartbeatIntervalMs * 2 > o.leaseTtlMs) throw new Error(`${optionName("heartbeatIntervalMs")} must be at most half of ${optionName("leaseTtlMs")}`);
  const authTokens = compileTokens(o.authTokens, "authTokens");
  const metricsAuth = partial.metricsAuth ?? (authTokens.length > 0 ? "token" : "open");
  if (metricsAuth !== "open" && metricsAuth !== "token") throw new Error(`option metricsAuth (FLOWFABRIC_METRICS_AUTH) must be "open" or "token", got "${String(metricsAuth)}"`);
  if (metricsAuth === "token" && authTokens.length === 0) throw new Error("option metricsAuth (FLOWFABRIC_METRICS_AUTH) \"token\" needs tokens (FLOWFABRIC_AUTH_TOKENS or FLOWFABRIC_AUTH_FILE)");
  if (authTokens.length === 0 && !o.allowInsecure && !isLoopback(o.host)) {
    throw new Error(
      `refusing to listen on ${o.host} (FLOWFABRIC_HOST) without authentication: anyone who can reach it could run, read and cancel ` +
        "every execution. Configure bearer tokens with FLOWFABRIC_AUTH_TOKENS or FLOWFABRIC_AUTH_FILE (docs/security.md), " +
        "or set FLOWFABRIC_ALLOW_INSECURE=1 to serve without authentication anyway.",
    );
  }
  if ((o.tlsCertFile === "") !== (o.tlsKeyFile === "")) throw new Error("options tlsCertFile (FLOWFABRIC_TLS_CERT) and tlsKeyFile (FLOWFABRIC_TLS_KEY) go together: set both or neither");
  if (o.tlsClientCaFile !== "" && o.tlsCertFile === "") throw new Error("option tlsClientCaFile (FLOWFABRIC_TLS_CLIENT_CA) needs TLS: set FLOWFABRIC_TLS_CERT and FLOWFABRIC_TLS_KEY too");
  return Object.freeze({
    ...o, authTokens, metricsAuth, dataDir: resolve(o.dataDir), gatewayId: o.gatewayId || `gw-${randomUUID().slice(0, 8)}`,
  });
}

/** True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h === "::1" || h === "::ffff:127.0.0.1";
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The environment variable of each option that has one: the one table `optionsFromEnv` reads and
 * option errors name (an operator sees FLOWFABRIC_LEASE_TTL_MS, not leaseTtlMs).
 */
export const ENV_OF_OPTION: Readonly<Partial<Record<keyof GatewayOptions, string>>> = Object.freeze({
  host: "FLOWFABRIC_HOST",
  grpcPort: "FLOWFABRIC_GRPC_PORT",
  httpPort: "FLOWFABRIC_HTTP_PORT",
  valkeyUrl: "VALKEY_URL",
  dataDir: "FLOWFABRIC_DATA_DIR",
  partitions: "FLOWFABRIC_PARTITIONS",
  leaseTtlMs: "FLOWFABRIC_LEASE_TTL_MS",
  heartbeatIntervalMs: "FLOWFABRIC_HEARTBEAT_INTERVAL_MS",
  drainGraceMs: "FLOWFABRIC_DRAIN_GRACE_MS",
  retentionMs: "FLOWFABRIC_RETENTION_MS",
  maxPayloadBytes: "FLOWFABRIC_MAX_PAYLOAD_BYTES",
  maxMessageBytes: "FLOWFABRIC_MAX_MESSAGE_BYTES",
  maxFrameBytes: "FLOWFABRIC_MAX_FRAME_BYTES",
  maxStreamFrames: "FLOWFABRIC_MAX_STREAM_FRAMES",
  maxTails: "FLOWFABRIC_MAX_TAILS",
  maxTailsPerClient: "FLOWFABRIC_MAX_TAILS_PER_CLIENT",
  maxSessionsPerConnection: "FLOWFABRIC_MAX_SESSIONS_PER_CONNECTION",
  maxSignalsPerExecution: "FLOWFABRIC_MAX_SIGNALS_PER_EXECUTION",
  maxSignalPayloadBytes: "FLOWFABRIC_MAX_SIGNAL_PAYLOAD_BYTES",
  maxWaitpointsPerExecution: "FLOWFABRIC_MAX_WAITPOINTS_PER_EXECUTION",
  maxPendingWaitpointMs: "FLOWFABRIC_MAX_PENDING_WAITPOINT_MS",
  waitpointKeyGraceMs: "FLOWFABRIC_WAITPOINT_KEY_GRACE_MS",
  allowEviction: "FLOWFABRIC_ALLOW_EVICTION",
  readyTimeoutMs: "FLOWFABRIC_READY_TIMEOUT_MS",
});
const STRING_OPTIONS: ReadonlySet<keyof GatewayOptions> = new Set(["host", "valkeyUrl", "dataDir"]);
const BOOLEAN_OPTIONS: ReadonlySet<keyof GatewayOptions> = new Set(["allowEviction"]);

/** "option leaseTtlMs (FLOWFABRIC_LEASE_TTL_MS)": how errors name an option. */
function optionName(k: keyof GatewayOptions): string {
  const env = ENV_OF_OPTION[k];
  return env ? `option ${k} (${env})` : `option ${k}`;
}

/** The one place that reads environment variables. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<GatewayOptions> {
  const out: Partial<Record<keyof GatewayOptions, unknown>> = {};
  for (const [k, name] of Object.entries(ENV_OF_OPTION) as [keyof GatewayOptions, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    if (STRING_OPTIONS.has(k)) {
      out[k] = raw;
      continue;
    }
    if (BOOLEAN_OPTIONS.has(k)) {
      out[k] = flag(env, name);
      continue;
    }
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new Error(`environment variable ${name} must be an integer, got "${raw}"`);
    out[k] = n;
  }
  const rest: Partial<Record<keyof GatewayOptions, unknown>> = {
    authTokens: tokensFromEnv(env),
    metricsAuth: env["FLOWFABRIC_METRICS_AUTH"] || undefined,
    allowInsecure: flag(env, "FLOWFABRIC_ALLOW_INSECURE"),
    tlsCertFile: env["FLOWFABRIC_TLS_CERT"] || undefined,
    tlsKeyFile: env["FLOWFABRIC_TLS_KEY"] || undefined,
    tlsClientCaFile: env["FLOWFABRIC_TLS_CLIENT_CA"] || undefined,
  };
  return { ...out, ...stripUndefined(rest) } as Partial<GatewayOptions>;
}

/** Log level from FLOWFABRIC_LOG_LEVEL (default info); throws naming the variable when unknown. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const raw = (env["FLOWFABRIC_LOG_LEVEL"] ?? "").trim().toLowerCase();
  if (raw === "") return "info";
  if (!isLogLevel(raw)) throw new Error(`environment variable FLOWFABRIC_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"`);
  return raw;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = (env[name] ?? "").trim().toLowerCase();
  if (raw === "") return undefined;
  if (raw === "1" || raw === "true" || raw === "yes") return true;
  if (raw === "0" || raw === "false" || raw === "no") return false;
  throw new Error(`environment variable ${name} must be 1 or 0, got "${env[name]}"`);
}

/** Tokens of FLOWFABRIC_AUTH_TOKENS and FLOWFABRIC_AUTH_FILE together, checked and hashed. */
function tokensFromEnv(env: NodeJS.ProcessEnv): readonly TokenSpec[] | undefined {
  const specs: TokenSpec[] = [];
  const list = env["FLOWFABRIC_AUTH_TOKENS"] ?? "";
  if (list.trim() !== "") specs.push(...compileTokens(parseTokenList(list, "FLOWFABRIC_AUTH_TOKENS"), "FLOWFABRIC_AUTH_TOKENS"));
  const file = env["FLOWFABRIC_AUTH_FILE"] ?? "";
  if (file !== "") {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new Error(`FLOWFABRIC_AUTH_FILE: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const source = `FLOWFABRIC_AUTH_FILE ${file}: tokens`;
    specs.push(...compileTokens(parseTokenFile(text, `FLOWFABRIC_AUTH_FILE ${file}`), source));
  }
  return specs.length > 0 ? specs : undefined;
}

/**
 * Secret (hex, 32..256 characters) of the first waitpoint token key, installed on a deployment's
 * first boot (FLOWFABRIC_WAITPOINT_SECRET); undefined: a random one. Kept out of GatewayOptions so
 * it is never logged with them. Throws naming the variable when malformed.
 */
export function waitpointSecretFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env["FLOWFABRIC_WAITPOINT_SECRET"];
  if (raw === undefined || raw === "") return undefined;
  const hex = raw.trim().toLowerCase();
  if (!/^[0-9a-f]{32,256}$/.test(hex) || hex.length % 2 === 1) {
    throw new Error("environment variable FLOWFABRIC_WAITPOINT_SECRET must be 32..256 hex characters (an even number)");
  }
  return hex;
}

/** Path of the embedded server binary override, if any (read here so no other module touches env). */
export function serverBinaryFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env["VALKEY_SERVER_BIN"] || undefined;
}

/**
 * Trace and metric export, from the standard `OTEL_*` variables (docs/observability.md). Off by
 * default: traces are exported only when `OTEL_TRACES_EXPORTER` is "otlp" or "console", or an
 * OTLP endpoint is set and `OTEL_TRACES_EXPORTER` is not "none". `GET /metrics` is always served.
 */
export interface TelemetryOptions {
  /** Where spans go: "none" (no tracer provider is registered), "otlp" (OTLP/HTTP protobuf) or "console". */
  readonly tracesExporter: "none" | "otlp" | "console";
  /** Metrics pushed besides `GET /metrics`: "none" or "otlp". */
  readonly metricsExporter: "none" | "otlp";
  /** OTLP/HTTP traces URL (e.g. http://localhost:4318/v1/traces). */
  readonly otlpTracesUrl: string;
  /** OTLP/HTTP metrics URL. */
  readonly otlpMetricsUrl: string;
  /** Headers sent with every OTLP request (`OTEL_EXPORTER_OTLP_HEADERS`, "k=v,k2=v2"). */
  readonly otlpHeaders: Readonly<Record<string, string>>;
  /** OTLP request timeout. */
  readonly otlpTimeoutMs: number;
  /** Interval between OTLP metric exports. */
  readonly metricExportIntervalMs: number;
  /** `service.name` of the resource. */
  readonly serviceName: string;
  /** Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`, "k=v,k2=v2"). */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  /** Sampler: always_on, always_off, traceidratio, parentbased_always_on (default), parentbased_always_off, parentbased_traceidratio. */
  readonly sampler: string;
  /** Ratio of the traceidratio samplers, in [0, 1]. */
  readonly samplerRatio: number;
}

/** `service.name` when `OTEL_SERVICE_NAME` is unset. */
export const DEFAULT_SERVICE_NAME = "flowfabric-gateway";

const SAMPLERS = new Set(["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"]);

/** Reads the `OTEL_*` variables (the one place that reads them). Throws naming a malformed variable. */
export function telemetryFromEnv(env: NodeJS.ProcessEnv = process.env): TelemetryOptions {
  const text = (name: string): string => (env[name] ?? "").trim();
  const pairs = (name: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const item of text(name).split(",")) {
      if (item.trim() === "") continue;
      const eq = item.indexOf("=");
      if (eq <= 0) throw new Error(`environment variable ${name}: expected key=value pairs, got "${item}"`);
      out[decodeURIComponent(item.slice(0, eq).trim())] = decodeURIComponent(item.slice(eq + 1).trim());
    }
    return out;
  };
  const ms = (name: string, def: number): number => {
    const raw = text(name);
    if (raw === "") return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`environment variable ${name} must be a positive integer (ms), got "${raw}"`);
    return n;
  };
  const disabled = text("OTEL_SDK_DISABLED").toLowerCase() === "true";
  const base = text("OTEL_EXPORTER_OTLP_ENDPOINT").replace(/\/+$/, "");
  const tracesUrl = text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || (base ? `${base}/v1/traces` : "");
  const metricsUrl = text("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") || (base ? `${base}/v1/metrics` : "");
  const exporter = (name: string, allowed: readonly string[], endpointSet: boolean): string => {
    const first = text(name).toLowerCase().split(",")[0]?.trim() ?? "";
    if (first !== "" && !allowed.includes(first)) throw new Error(`environment variable ${name}: unsupported exporter "${first}" (${allowed.join(", ")})`);
    if (disabled) return "none";
    return first || (endpointSet ? "otlp" : "none");
  };
  const tracesExporter = exporter("OTEL_TRACES_EXPORTER", ["none", "otlp", "console"], tracesUrl !== "") as TelemetryOptions["tracesExporter"];
  const metricsExporter = exporter("OTEL_METRICS_EXPORTER", ["none", "otlp", "prometheus"], metricsUrl !== "");
  const sampler = text("OTEL_TRACES_SAMPLER").toLowerCase() || "parentbased_always_on";
  if (!SAMPLERS.has(sampler)) throw new Error(`environment variable OTEL_TRACES_SAMPLER: unsupported sampler "${sampler}"`);
  const ratioRaw = text("OTEL_TRACES_SAMPLER_ARG");
  const samplerRatio = ratioRaw === "" ? 1 : Number(ratioRaw);
  if (!(samplerRatio >= 0 && samplerRatio <= 1)) throw new Error(`environment variable OTEL_TRACES_SAMPLER_ARG must be in [0, 1], got "${ratioRaw}"`);
  return Object.freeze({
    tracesExporter,
    // "prometheus" means the built-in GET /metrics only.
    metricsExporter: metricsExporter === "otlp" ? "otlp" : "none",
    otlpTracesUrl: tracesUrl || "http://localhost:4318/v1/traces",
    otlpMetricsUrl: metricsUrl || "http://localhost:4318/v1/metrics",
    otlpHeaders: Object.freeze(pairs("OTEL_EXPORTER_OTLP_HEADERS")),
    otlpTimeoutMs: ms("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000),
    metricExportIntervalMs: ms("OTEL_METRIC_EXPORT_INTERVAL", 60_000),
    serviceName: text("OTEL_SERVICE_NAME") || DEFAULT_SERVICE_NAME,
    resourceAttributes: Object.freeze(pairs("OTEL_RESOURCE_ATTRIBUTES")),
    sampler,
    samplerRatio,
  });
}

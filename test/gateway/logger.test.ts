import { compileOptions, logLevelFromEnv, optionsFromEnv } from "../../gateway/src/config.js";
import { createLogger } from "../../gateway/src/logger.js";
import { redact, redactUrlCredentials, registerSecret } from "../../gateway/src/secrets.js";
import { capturedLogs } from "../support/logs.js";

test("levels: a line below the level is not written; FLOWFABRIC_LOG_LEVEL picks it and names itself when wrong", () => {
  const lines = capturedLogs(() => {
    const log = createLogger("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e", { n: 1 });
  });
  expect(lines.map((l) => [l["level"], l["msg"]])).toEqual([["warn", "w"], ["error", "e"]]);
  expect(lines[1]).toMatchObject({ n: 1 });
  expect(typeof lines[0]!["time"]).toBe("string");
  expect(capturedLogs(() => createLogger("debug").debug("shown"))).toHaveLength(1);
  expect(logLevelFromEnv({})).toBe("info");
  expect(logLevelFromEnv({ FLOWFABRIC_LOG_LEVEL: "DEBUG" })).toBe("debug");
  expect(() => logLevelFromEnv({ FLOWFABRIC_LOG_LEVEL: "loud" })).toThrow(/FLOWFABRIC_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent/);
});

test("secrets are redacted from messages, fields and child bindings: URL passwords, registered values, secret-named fields", () => {
  registerSecret("generated-password-123");
  const lines = capturedLogs(() => {
    const log = createLogger("info").child({ url: "redis://admin:pw1@h:6379" });
    log.info("connecting to redis+cluster://:pw2@a:1,b:2 with generated-password-123", {
      err: "ERR redis://u:pw3@x failed", password: "pw4", nested: { token: "t", list: ["rediss://:pw5@y"] },
    });
  });
  const text = JSON.stringify(lines);
  for (const secret of ["pw1", "pw2", "pw3", "pw4", "pw5", "generated-password-123", "\"t\""]) expect(text).not.toContain(secret);
  expect(lines[0]).toMatchObject({ url: "redis://admin:[REDACTED]@h:6379", password: "[REDACTED]", nested: { token: "[REDACTED]" } });
  expect(redactUrlCredentials("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
  expect(redactUrlCredentials("redis://onlypass@h:1")).toBe("redis://[REDACTED]@h:1");
  expect(redact("plain text")).toBe("plain text");
});

test("option errors name the environment variable", () => {
  expect(() => compileOptions(optionsFromEnv({ FLOWFABRIC_LEASE_TTL_MS: "-5" }))).toThrow("option leaseTtlMs (FLOWFABRIC_LEASE_TTL_MS) must be a positive integer, got -5");
  expect(() => compileOptions(optionsFromEnv({ FLOWFABRIC_LEASE_TTL_MS: "1000", FLOWFABRIC_HEARTBEAT_INTERVAL_MS: "900" })))
    .toThrow("option heartbeatIntervalMs (FLOWFABRIC_HEARTBEAT_INTERVAL_MS) must be at most half of option leaseTtlMs (FLOWFABRIC_LEASE_TTL_MS)");
  expect(() => optionsFromEnv({ FLOWFABRIC_MAX_TAILS: "lots" })).toThrow('environment variable FLOWFABRIC_MAX_TAILS must be an integer, got "lots"');
  expect(optionsFromEnv({ FLOWFABRIC_ALLOW_EVICTION: "1", FLOWFABRIC_HOST: "0.0.0.0", FLOWFABRIC_MAX_TAILS_PER_CLIENT: "3" }))
    .toEqual({ allowEviction: true, host: "0.0.0.0", maxTailsPerClient: 3 });
  expect(() => optionsFromEnv({ FLOWFABRIC_ALLOW_EVICTION: "yes please" })).toThrow(/FLOWFABRIC_ALLOW_EVICTION must be 1 or 0/);
});

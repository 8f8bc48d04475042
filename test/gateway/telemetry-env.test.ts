import { telemetryFromEnv } from "../../gateway/src/config.js";

/**
 * Exporter selection from the OTel environment (docs/observability.md): the spec's default for
 * OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER is "otlp"; the gateway applies that default
 * once an OTLP endpoint is configured, and exports nothing with no endpoint variable at all.
 */
test("unset exporters with no endpoint: nothing pushed (GET /metrics only, no spans)", () => {
  const t = telemetryFromEnv({});
  expect(t.tracesExporter).toBe("none");
  expect(t.metricsExporter).toBe("none");
});

test("unset exporters with an endpoint: the spec default otlp, for traces and metrics alike", () => {
  const t = telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" });
  expect(t.tracesExporter).toBe("otlp");
  expect(t.metricsExporter).toBe("otlp");
  expect(t.otlpTracesUrl).toBe("http://collector:4318/v1/traces");
  expect(t.otlpMetricsUrl).toBe("http://collector:4318/v1/metrics");
});

test("a signal-specific endpoint turns on that signal only", () => {
  const t = telemetryFromEnv({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://m:4318/v1/metrics" });
  expect(t.tracesExporter).toBe("none");
  expect(t.metricsExporter).toBe("otlp");
});

test("explicit choices win: none, prometheus (GET /metrics only), otlp without endpoint (the spec's localhost:4318)", () => {
  expect(telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_METRICS_EXPORTER: "none" }).metricsExporter).toBe("none");
  expect(telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_METRICS_EXPORTER: "prometheus" }).metricsExporter).toBe("none");
  const t = telemetryFromEnv({ OTEL_METRICS_EXPORTER: "otlp", OTEL_TRACES_EXPORTER: "otlp" });
  expect(t.metricsExporter).toBe("otlp");
  expect(t.otlpMetricsUrl).toBe("http://localhost:4318/v1/metrics");
  expect(t.otlpTracesUrl).toBe("http://localhost:4318/v1/traces");
  expect(telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).metricsExporter).toBe("none");
});

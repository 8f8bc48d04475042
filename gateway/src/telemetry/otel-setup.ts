import { context, propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { PeriodicExportingMetricReader, type IMetricReader } from "@opentelemetry/sdk-metrics";
import {
  AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, ParentBasedSampler,
  SimpleSpanProcessor, TraceIdRatioBasedSampler, type Sampler,
} from "@opentelemetry/sdk-trace-base";
import type { TelemetryOptions } from "../config.js";
import type { Logger } from "../logger.js";
import { SyncContextManager } from "./sync-context-manager.js";

/**
 * The application side of telemetry for `npm start` (main.ts): registers an SDK tracer provider
 * (OTLP/HTTP or console exporter, sampler, resource), a synchronous context manager (the gateway
 * passes span parents explicitly: see SyncContextManager) and the W3C propagator when trace
 * export is on, and builds the OTLP metric reader when metric push is
 * on. Library code (gateway, SDK) only ever talks to `@opentelemetry/api`.
 */
export interface TelemetrySetup {
  /**
   * The process's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`): the same one for
   * spans and, through `startGateway({ resource })`, for metrics (`target_info`, OTLP push).
   */
  readonly resource: Resource;
  /** Extra metric readers for the gateway's meter provider (OTLP push); empty when off. */
  readonly metricReaders: readonly IMetricReader[];
  /** Flushes and stops the tracer provider. */
  shutdown(): Promise<void>;
}

export function setupTelemetry(options: TelemetryOptions, log: Logger): TelemetrySetup {
  const resource = telemetryResource(options);
  const headers = { ...options.otlpHeaders };
  let provider: BasicTracerProvider | undefined;
  if (options.tracesExporter !== "none") {
    const processor = options.tracesExporter === "otlp"
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: options.otlpTracesUrl, headers, timeoutMillis: options.otlpTimeoutMs }))
      : new SimpleSpanProcessor(new ConsoleSpanExporter());
    provider = new BasicTracerProvider({ resource, sampler: sampler(options), spanProcessors: [processor] });
    context.setGlobalContextManager(new SyncContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    log.info("telemetry: tracing on", {
      exporter: options.tracesExporter, ...(options.tracesExporter === "otlp" ? { url: options.otlpTracesUrl } : {}),
      sampler: options.sampler, serviceName: options.serviceName,
    });
  } else {
    log.info("telemetry: tracing off (set OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT to export spans)");
  }
  const metricReaders: IMetricReader[] = [];
  if (options.metricsExporter === "otlp") {
    metricReaders.push(new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: options.otlpMetricsUrl, headers, timeoutMillis: options.otlpTimeoutMs }),
      exportIntervalMillis: options.metricExportIntervalMs,
    }));
    log.info("telemetry: metrics pushed over OTLP/HTTP", { url: options.otlpMetricsUrl, intervalMs: options.metricExportIntervalMs });
  }
  return {
    resource,
    metricReaders,
    shutdown: async () => {
      await provider?.shutdown().catch((err: unknown) => log.warn("telemetry: tracer shutdown failed", { err: String(err) }));
    },
  };
}

/** The SDK's default resource, then `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME` (which wins, as the spec says). */
export function telemetryResource(options: Pick<TelemetryOptions, "serviceName" | "resourceAttributes">): Resource {
  return defaultResource().merge(resourceFromAttributes({ ...options.resourceAttributes, "service.name": options.serviceName }));
}

function sampler(options: TelemetryOptions): Sampler {
  const ratio = new TraceIdRatioBasedSampler(options.samplerRatio);
  switch (options.sampler) {
    case "always_on": return new AlwaysOnSampler();
    case "always_off": return new AlwaysOffSampler();
    case "traceidratio": return ratio;
    case "parentbased_always_off": return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio": return new ParentBasedSampler({ root: ratio });
    default: return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Meter } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { defaultResource, resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { MeterProvider, type IMetricReader } from "@opentelemetry/sdk-metrics";
import { DEFAULT_SERVICE_NAME } from "../config.js";
import { GATEWAY_SCOPE, SCOPE_VERSION } from "@flowfabric/sdk/wire";
import type { CommandClient } from "../engine/connections.js";
import { PartitionKeys } from "../engine/keys.js";

/**
 * The gateway's own meter provider: its instruments are collected on each `GET /metrics`
 * (Prometheus text format, by the official serialiser) and by any extra reader (e.g. OTLP push,
 * set up by main.ts from `OTEL_METRICS_EXPORTER`). Owned per gateway, so several gateways in one
 * process (tests) each serve their own numbers, and no global provider is claimed.
 */
export interface MetricsEndpoint {
  /** The meter every gateway instrument is created from. */
  readonly meter: Meter;
  /** Handler of `GET /metrics`. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Flushes extra readers and stops collection. */
  shutdown(): Promise<void>;
}

/**
 * `resource` (main.ts: the one built from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, also
 * used by spans) plus `service.instance.id` = `gatewayId` describes the metrics (Prometheus
 * `target_info`, OTLP push). Without one, `service.name` is `flowfabric-gateway`.
 */
export function startMetricsEndpoint(resource: Resource | undefined, gatewayId: string, extraReaders: readonly IMetricReader[] = []): MetricsEndpoint {
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const base = resource ?? defaultResource().merge(resourceFromAttributes({ "service.name": DEFAULT_SERVICE_NAME }));
  const provider = new MeterProvider({ resource: base.merge(resourceFromAttributes({ "service.instance.id": gatewayId })), readers: [prometheus, ...extraReaders] });
  return {
    meter: provider.getMeter(GATEWAY_SCOPE, SCOPE_VERSION),
    handle: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    shutdown: () => provider.shutdown().catch(() => undefined),
  };
}

/** Eligible executions of one queue: ZCARD of its eligible set in every partition, pipelined. */
export function eligibleDepthReader(client: CommandClient, partitions: number): (namespace: string, lane: string) => Promise<number> {
  const keys = Array.from({ length: partitions }, (_, p) => new PartitionKeys(p));
  return async (namespace, lane) => {
    const counts = await Promise.all(keys.map((k) => client.zcard(k.eligible(namespace, lane))));
    return counts.reduce((sum, n) => sum + n, 0);
  };
}

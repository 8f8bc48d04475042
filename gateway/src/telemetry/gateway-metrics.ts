import { createNoopMeter, type Attributes, type Counter, type Histogram, type Meter } from "@opentelemetry/api";
import {
  ATTR_FAILURE_CATEGORY, ATTR_LANE, ATTR_NAMESPACE, ATTR_OUTCOME, METRIC_CANCELLATIONS, METRIC_CLAIMS, METRIC_COMPLETIONS,
  METRIC_DISPATCH_LATENCY, METRIC_ELIGIBLE_DEPTH, METRIC_FAILURES, METRIC_FRAMES_APPENDED, METRIC_LEASE_RENEWAL_FAILURES,
  METRIC_LEASE_RENEWALS, METRIC_LEASES_ACTIVE, METRIC_LEASES_LOST, METRIC_RETRIES, METRIC_SESSIONS_LIVE, SECONDS_BUCKETS,
} from "@flowfabric/sdk/wire";

/** What the observable gauges read when metrics are collected (a scrape of GET /metrics). */
export interface MetricSources {
  /** Live (welcomed) sessions. */
  sessions(): number;
  /** Leases held by this gateway's sessions. */
  leases(): number;
  /** The queues (namespace, lane) served by this gateway's sessions. */
  queues(): Iterable<readonly [namespace: string, lane: string]>;
  /** Eligible executions of one queue across partitions (ZCARD of its eligible sets). */
  eligibleDepth(namespace: string, lane: string): Promise<number>;
}

/**
 * The gateway's instruments, created once from one meter (`@opentelemetry/api`). Recording is
 * cheap: counters and histograms with a handful of attributes, and the per-queue attribute
 * objects are cached. Names and attributes: docs/observability.md.
 */
export class GatewayMetrics {
  /** create -> push, first attempts only (seconds). */
  readonly dispatchLatency: Histogram;
  /** Tasks granted and pushed to a session. */
  readonly claims: Counter;
  readonly completions: Counter;
  /** Failures reported by workers, by category and outcome (retry_scheduled | failed). */
  readonly failures: Counter;
  /** Failures that scheduled a retry. */
  readonly retries: Counter;
  /** Cancellations by the lease holder. */
  readonly cancellations: Counter;
  /** Leases renewed (heartbeat rounds and renewLease). */
  readonly leaseRenewals: Counter;
  /** Leases not renewed (gone) or whose renewal round failed. */
  readonly leaseRenewalFailures: Counter;
  /** Leases this gateway's sessions lost (expired, reclaimed, not renewed). */
  readonly leasesLost: Counter;
  /** Output frames appended. */
  readonly framesAppended: Counter;
  readonly #queueAttributes = new Map<string, Attributes>();

  constructor(meter: Meter = createNoopMeter(), sources?: MetricSources) {
    this.dispatchLatency = meter.createHistogram(METRIC_DISPATCH_LATENCY, {
      description: "Time from an execution's creation to the push of its first attempt to a worker",
      unit: "s",
      advice: { explicitBucketBoundaries: [...SECONDS_BUCKETS] },
    });
    this.claims = meter.createCounter(METRIC_CLAIMS, { description: "Tasks granted to and pushed on a worker session" });
    this.completions = meter.createCounter(METRIC_COMPLETIONS, { description: "Executions completed by their worker" });
    this.failures = meter.createCounter(METRIC_FAILURES, { description: "Attempt failures reported by workers, by category and outcome" });
    this.retries = meter.createCounter(METRIC_RETRIES, { description: "Attempt failures that scheduled a retry" });
    this.cancellations = meter.createCounter(METRIC_CANCELLATIONS, { description: "Executions cancelled by their lease holder" });
    this.leaseRenewals = meter.createCounter(METRIC_LEASE_RENEWALS, { description: "Leases renewed" });
    this.leaseRenewalFailures = meter.createCounter(METRIC_LEASE_RENEWAL_FAILURES, { description: "Lease renewals refused or failed" });
    this.leasesLost = meter.createCounter(METRIC_LEASES_LOST, { description: "Leases lost by this gateway's sessions" });
    this.framesAppended = meter.createCounter(METRIC_FRAMES_APPENDED, { description: "Output frames appended" });
    if (sources === undefined) return;
    meter.createObservableGauge(METRIC_SESSIONS_LIVE, { description: "Live worker sessions on this gateway" })
      .addCallback((result) => result.observe(sources.sessions()));
    meter.createObservableGauge(METRIC_LEASES_ACTIVE, { description: "Leases held by this gateway's sessions" })
      .addCallback((result) => result.observe(sources.leases()));
    meter.createObservableGauge(METRIC_ELIGIBLE_DEPTH, { description: "Eligible executions per queue served by this gateway" })
      .addCallback(async (result) => {
        const queues = [...sources.queues()];
        const depths = await Promise.all(queues.map(([namespace, lane]) => sources.eligibleDepth(namespace, lane)));
        queues.forEach(([namespace, lane], i) => result.observe(depths[i] ?? 0, this.queue(namespace, lane)));
      });
  }

  /** Cached attributes of one queue. */
  queue(namespace: string, lane: string): Attributes {
    const key = `${namespace}/${lane}`;
    let attributes = this.#queueAttributes.get(key);
    if (attributes === undefined) {
      attributes = Object.freeze({ [ATTR_NAMESPACE]: namespace, [ATTR_LANE]: lane });
      if (this.#queueAttributes.size < 10_000) this.#queueAttributes.set(key, attributes);
    }
    return attributes;
  }

  /** Records a failure report's outcome. */
  failed(category: string, retry: boolean): void {
    const outcome = retry ? "retry_scheduled" : "failed";
    this.failures.add(1, { [ATTR_FAILURE_CATEGORY]: category, [ATTR_OUTCOME]: outcome });
    if (retry) this.retries.add(1);
  }
}

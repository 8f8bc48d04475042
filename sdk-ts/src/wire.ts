/**
 * `@flowfabric/sdk/wire`: the wire conventions the SDK and the gateway share — the generated
 * `flowfabric.v1` messages and service descriptors, the grpc-js adapter for them, error details in
 * status trailers, the worker-operation table, Session batching, W3C trace headers, and the
 * span/attribute/metric names.
 *
 * This is the protocol layer, published so that servers and tools speak exactly what the SDK
 * speaks (the FlowFabric gateway imports only this and the main entry point). Application code
 * wants `@flowfabric/sdk` instead; this module follows the protocol, not semver of the SDK API.
 *
 * Every generated file and every module of transport/ is re-exported here, once (a new `.proto`
 * file or shared convention adds its line; test/packages/workspaces.test.ts checks).
 *
 * @packageDocumentation
 * @private
 */
export * from "./gen/flowfabric/v1/common_pb.js";
export * from "./gen/flowfabric/v1/execution_pb.js";
export * from "./gen/flowfabric/v1/worker_pb.js";
export * from "./gen/flowfabric/v1/stream_pb.js";
export * from "./gen/flowfabric/v1/admin_pb.js";
export * from "./gen/flowfabric/v1/signal_pb.js";
export * from "./transport/grpc-service.js";
export * from "./transport/status-details.js";
export * from "./transport/session-batching.js";
export * from "./transport/turn-batcher.js";
export * from "./transport/worker-operations.js";
export * from "./telemetry/attributes.js";
export * from "./telemetry/trace-context.js";

import type { Authorizer } from "../auth/authorizer.js";
import type { ExecutionHandlers } from "../rpc/execution-service.js";
import type { StreamHandlers } from "../rpc/stream-service.js";
import type { AdminHandlers } from "../rpc/admin-service.js";
import type { SignalHandlers } from "../rpc/signal-service.js";
import type { TaskOperations } from "../rpc/task-operations.js";
import type { SessionTransport } from "../sessions/session-transport.js";
import type { GatewayTelemetry } from "../telemetry/gateway-telemetry.js";

/** What the listeners serve: transport-independent handlers plus the session factory. */
export interface Services {
  readonly exec: ExecutionHandlers;
  readonly ops: TaskOperations;
  readonly admin: AdminHandlers;
  readonly signals: SignalHandlers;
  readonly streams: StreamHandlers;
  /** The access check of every call (auth/authorizer.ts). */
  readonly auth: Authorizer;
  /** Spans of unary RPCs (and the gateway's instruments). */
  readonly telemetry: GatewayTelemetry;
  openSession(transport: SessionTransport): void;
  /** True while the gateway accepts work (false once draining). */
  healthy(): boolean;
  /**
   * Readiness (GET /readyz): null when ready, else why not — draining, or the store does not
   * answer within the bound, or the library is not loaded.
   */
  notReady(): Promise<string | null>;
}

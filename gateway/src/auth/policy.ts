import type { MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { AdminService, ExecutionService, type Fence, OPERATION_LIST, SignalService, StreamService, WorkerService } from "@flowfabric/sdk/wire";
import type { Role } from "./tokens.js";

/**
 * The one access table: every RPC of every service, the roles that may call it, and where its
 * request names a namespace or an execution (whose namespace the token must grant). Both
 * listeners look calls up here by path (auth/authorizer.ts); a method missing from a service's
 * entry is a compile error (a test checks the whole table against the generated services), and a
 * path missing from the table is refused.
 *
 * A new RPC taking execution ids adds its row with `executions`; nothing else changes. A new
 * worker operation (the worker-operation table of @flowfabric/sdk/wire) gets its row by itself: it acts on its fence.
 */
export interface AccessPolicy<Req = unknown> {
  /** Roles allowed to call it (any one suffices). */
  readonly roles: readonly Role[];
  /** Namespaces the request acts in, as [field, namespace as sent] ("" means "default"). */
  readonly namespaces?: (req: Req) => Iterable<readonly [string, string]>;
  /** Executions the request names, as [field, execution id]. */
  readonly executions?: (req: Req) => Iterable<readonly [string, string]>;
}

/** `operator` may call everything; the other roles only what their job needs. */
const PRODUCE: readonly Role[] = ["producer", "operator"];
const READ: readonly Role[] = ["producer", "worker", "operator"];
const WORK: readonly Role[] = ["worker", "operator"];
const OPERATE: readonly Role[] = ["operator"];
const ANYONE: readonly Role[] = ["producer", "worker", "operator", "metrics"];

/** Roles allowed to scrape `GET /metrics` when it is token-protected. */
export const METRICS_ROLES: readonly Role[] = ["metrics", "operator"];

type WorkerMethods = typeof WorkerService extends GenService<infer S> ? S : never;
type ServicePolicies<S extends GenServiceMethods> = { readonly [K in keyof S]: AccessPolicy<MessageShape<S[K]["input"]>> };

const byId = (field = "execution_id") => (r: { executionId: string }) => [[field, r.executionId] as const];
const byFence = (r: { fence?: Fence | undefined }) => (r.fence ? [["fence.execution_id", r.fence.executionId] as const] : []);
const fenced: AccessPolicy<{ fence?: Fence | undefined }> = { roles: WORK, executions: byFence };

const table = new Map<string, AccessPolicy>();
function service<S extends GenServiceMethods>(svc: GenService<S>, policies: ServicePolicies<S>): void {
  for (const [localName, method] of Object.entries(svc.method)) {
    table.set(`/${svc.typeName}/${method.name}`, policies[localName as keyof S] as AccessPolicy);
  }
}

service(ExecutionService, {
  createExecution: { roles: PRODUCE, namespaces: (r) => [["namespace", r.namespace]] },
  createExecutions: { roles: PRODUCE, namespaces: (r) => r.executions.map((e, i) => [`executions[${i}].namespace`, e.namespace] as const) },
  describeExecution: { roles: READ, executions: byId() },
  getResult: { roles: READ, executions: byId() },
  cancelExecution: { roles: OPERATE, executions: byId() },
  resumeExecution: { roles: OPERATE, executions: byId() },
});
service(SignalService, {
  // The waitpoint token is the capability (checked before any store lookup, docs/signals.md): no
  // per-execution namespace lookup here, which would answer before the token and reveal whether
  // the execution exists.
  deliverSignal: { roles: READ },
});
service(StreamService, {
  readStream: { roles: READ, executions: byId() },
  tailStream: { roles: READ, executions: byId() },
});
service(WorkerService, {
  // The Session checks the Hello's namespace and each adopted lease itself (sessions/worker-session.ts).
  session: { roles: WORK },
  // Every worker operation's unary mirror (the worker-operation table of @flowfabric/sdk/wire) acts on its fence's execution.
  // (the test of this table checks that none is missing).
  ...Object.fromEntries(OPERATION_LIST.map((op) => [op.method.localName, fenced])),
} as ServicePolicies<WorkerMethods>);
service(AdminService, {
  getPartitionConfig: { roles: ANYONE },
  rotateWaitpointSecret: { roles: OPERATE },
});

/** Access policies by RPC path (`/flowfabric.v1.ExecutionService/CreateExecution`). */
export const ACCESS_POLICIES: ReadonlyMap<string, AccessPolicy> = table;

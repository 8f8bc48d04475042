import { create } from "@bufbuild/protobuf";
import { ClaimedTask, TASK_CONTROL } from "./claimed-task.js";
import {
  TaskAckSchema,
  type AdoptionResult, type CancelRequested, type HeartbeatAck, type LeaseLost, type TaskPush,
} from "./gen/flowfabric/v1/worker_pb.js";
import type { OperationRouter } from "./operation-router.js";
import type { StreamAccess } from "./streams.js";
import type { OperationOwner, TaskOperationChannel } from "./task-operations.js";
import { TaskQueue } from "./task-queue.js";
import type { WorkerEvent } from "./worker-events.js";
import type { WorkerSession } from "./worker-session.js";

/**
 * The worker's tasks: those it holds (running or settling, by execution id), those pushed but
 * not yet handed to the consumer, and the acknowledgements still to send. Applies the
 * gateway's lease messages (heartbeat_ack, lease_lost, cancel_requested) and adoption results.
 */
export class TaskRegistry {
  readonly #held = new Map<string, ClaimedTask>();
  readonly #queue = new TaskQueue<ClaimedTask>();
  readonly #acks = new Map<WorkerSession, ClaimedTask[]>();
  readonly #idleWaiters: Array<() => void> = [];
  readonly #channel: TaskOperationChannel;

  /** `router` carries the tasks' operations; `emit` reports lost tasks; `streams` serves their frame reads. */
  constructor(router: OperationRouter, private readonly emit: (event: WorkerEvent) => void, streams?: StreamAccess) {
    this.#channel = {
      submit: (owner, kind, request) => router.submit(owner, kind, request),
      taskEnded: (owner) => this.#ended(owner),
      ...(streams === undefined ? {} : { streams }),
    };
  }

  /** Number of held tasks. */
  get size(): number {
    return this.#held.size;
  }

  /** The held tasks, for `hello.held_leases`. */
  held(): ClaimedTask[] {
    return [...this.#held.values()];
  }

  /** Creates, queues and schedules acknowledgement of pushed tasks (all acks of one tick in one message). */
  receive(session: WorkerSession, push: TaskPush): void {
    let ids = this.#acks.get(session);
    if (ids === undefined) {
      ids = [];
      this.#acks.set(session, ids);
      setImmediate(() => this.#flushAcks(session));
    }
    for (const pushed of push.tasks) {
      const task = new ClaimedTask(pushed, this.#channel);
      this.#held.get(task.executionId)?.[TASK_CONTROL].lose("lease_lost", "the execution was pushed again");
      this.#held.set(task.executionId, task);
      ids.push(task);
      this.#queue.push(task);
    }
  }

  /**
   * An ended session's unacknowledged tasks were requeued by the gateway (protocol rule 5):
   * they are lost here too, before their handlers get far.
   */
  forgetSession(session: WorkerSession): void {
    const ids = this.#acks.get(session);
    this.#acks.delete(session);
    if (ids === undefined || ids.length === 0) return;
    const unacknowledged = new Set(ids);
    for (const task of this.held()) {
      if (unacknowledged.has(task)) task[TASK_CONTROL].lose("lease_lost", "the session ended before the task was acknowledged");
    }
  }

  /** Applies Welcome.adoptions to the tasks offered in that session's Hello; returns how many were adopted. */
  adopt(offered: readonly ClaimedTask[], adoptions: readonly AdoptionResult[]): number {
    let adopted = 0;
    offered.forEach((task, i) => {
      const adoption = adoptions[i];
      if (adoption?.adopted === true) {
        adopted += 1;
        task[TASK_CONTROL].renewed(Number(adoption.leaseExpiresAtMs));
      } else {
        task[TASK_CONTROL].lose("lease_lost", `not re-adopted: ${adoption?.error?.reason || "no adoption result"}`);
      }
    });
    return adopted;
  }

  /**
   * Applies one heartbeat's renewal outcomes, each to the task holding the lease it names
   * (`LeaseStatus.lease_id`): a status about an older lease of the same execution (pushed again
   * after a retry or reclaim) is not about the running task and is ignored.
   */
  heartbeatAck(ack: HeartbeatAck): void {
    for (const lease of ack.leases) {
      const task = this.#holding(lease.executionId, lease.leaseId);
      if (task === undefined) continue;
      if (lease.renewed) task[TASK_CONTROL].renewed(Number(lease.leaseExpiresAtMs));
      else task[TASK_CONTROL].lose("lease_lost", lease.reason || "not renewed");
    }
  }

  /** The gateway says a lease is gone. */
  leaseLost(message: LeaseLost): void {
    this.#holding(message.executionId, message.leaseId)?.[TASK_CONTROL].lose("lease_lost", message.reason);
  }

  /** Someone else cancelled a running execution. */
  cancelRequested(message: CancelRequested): void {
    const reason = message.cancelledBy === "" ? message.reason : `${message.reason} (by ${message.cancelledBy})`;
    this.#holding(message.executionId, message.leaseId)?.[TASK_CONTROL].lose("cancelled", reason);
  }

  /**
   * The held task of `executionId` if it holds lease `leaseId` — lease messages are paired by
   * lease id, never by time. An empty id (a peer that does not send one) means the current lease.
   */
  #holding(executionId: string, leaseId: string): ClaimedTask | undefined {
    const task = this.#held.get(executionId);
    return task !== undefined && (leaseId === "" || leaseId === task.leaseId) ? task : undefined;
  }

  /** A heartbeat period passed (counts missed renewals). */
  tick(): void {
    for (const task of this.#held.values()) task[TASK_CONTROL].tick();
  }

  /** The next running task for the consumer; undefined once intake stopped. */
  async next(): Promise<ClaimedTask | undefined> {
    for (;;) {
      const task = await this.#queue.next();
      if (task === undefined || task.state === "running") return task;
    }
  }

  /** Ends the consumer's stream and releases tasks never handed out (delay until now: the lease is freed at once). */
  stopIntake(): void {
    this.#queue.close();
    for (const task of this.#queue.drain()) {
      if (task.state === "running") task.delayExecution(Date.now()).catch(() => undefined);
    }
  }

  /** Resolves when no task is held. */
  whenIdle(): Promise<void> {
    if (this.#held.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Aborts every held task's signal with kind "shutdown". */
  shutdown(message: string): void {
    for (const task of this.#held.values()) task[TASK_CONTROL].shutdown(message);
  }

  #flushAcks(session: WorkerSession): void {
    const ids = this.#acks.get(session);
    this.#acks.delete(session);
    if (ids === undefined) return;
    // A task already being settled needs no ack: its complete/fail/cancel/delay tells the gateway
    // the worker has it (fast handlers finish before this tick's acks are flushed).
    const pending = ids.filter((task) => task.state === "running").map((task) => task.leaseId);
    if (pending.length > 0) session.send({ case: "ack", value: create(TaskAckSchema, { leaseIds: pending }) });
  }

  #ended(owner: OperationOwner): void {
    const task = this.#held.get(owner.executionId);
    if (task === undefined || task !== owner) return;
    this.#held.delete(owner.executionId);
    if (task.state === "lost") {
      const reason = task[TASK_CONTROL].abortReason();
      this.emit({ type: "task_lost", executionId: task.executionId, kind: reason?.kind ?? "lease_lost", message: reason?.message ?? "" });
    }
    if (this.#held.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}

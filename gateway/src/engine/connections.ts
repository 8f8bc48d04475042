/**
 * Connections to Valkey/Redis: one command connection (autopipelined) and one subscriber for the
 * partitions' sharded event channels.
 *
 * Addressing (ConnectionOptions):
 *  - `url: "redis://[user:pass@]host:port[/db]"` (or `rediss://`) — a standalone server;
 *  - `url: "redis+cluster://[user:pass@]host1:port1,host2:port2,..."` — a Cluster (seed nodes);
 *  - `seeds: ["host1:port1", ...]` — a Cluster when more than one seed is given (one seed: standalone).
 *
 * Cluster notes: iovalkey groups auto-pipelines by the slot of the first argument, which for FCALL is
 * the function name, so fcall/fcall_ro are excluded from autopipelining. Sharded pub/sub channels must
 * be subscribed on the node that owns their slot; iovalkey's Cluster subscriber uses one random
 * node, so {@link ShardedSubscriber} opens one plain connection per slot owner instead and rebuilds
 * the subscriptions when a node drops them (slot migration, failover). Those per-node connections
 * (and the blocking frame readers') never reconnect to their node: when it goes away they are
 * rebuilt on the slot's owner from a fresh slot map, every {@link NODE_RETRY_MS} until a replica is
 * promoted — so they follow a failover within about that long of the promotion. The command
 * connection refreshes its slot map every {@link SLOTS_REFRESH_MS} as well.
 */
import { Cluster, Redis, type RedisOptions } from "iovalkey";
import { keySlot } from "./keys.js";

export interface ConnectionOptions {
  /** `redis://`, `rediss://` or `redis+cluster://` URL (see the module comment). */
  readonly url?: string;
  /** Cluster seed nodes as "host:port"; more than one -> Cluster mode. */
  readonly seeds?: readonly string[];
}

export type CommandClient = Redis | Cluster;

interface ClusterAddress {
  readonly nodes: { host: string; port: number }[];
  readonly redisOptions: RedisOptions;
}

function parseHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  if (i <= 0) return { host: s, port: 6379 };
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) || 6379 };
}

/** Cluster address of the options, or null for a standalone server. */
export function clusterAddress(opts: ConnectionOptions): ClusterAddress | null {
  if (opts.seeds && opts.seeds.length > 1) return { nodes: opts.seeds.map(parseHostPort), redisOptions: {} };
  const url = opts.url ?? (opts.seeds?.[0] !== undefined ? `redis://${opts.seeds[0]}` : undefined);
  if (!url || !url.startsWith("redis+cluster://")) return null;
  const rest = url.slice("redis+cluster://".length).replace(/\/.*$/, "");
  const at = rest.lastIndexOf("@");
  const redisOptions: { username?: string; password?: string } = {};
  if (at >= 0) {
    const cred = rest.slice(0, at);
    const colon = cred.indexOf(":");
    if (colon >= 0) {
      if (colon > 0) redisOptions.username = decodeURIComponent(cred.slice(0, colon));
      redisOptions.password = decodeURIComponent(cred.slice(colon + 1));
    } else {
      redisOptions.password = decodeURIComponent(cred);
    }
  }
  const hosts = (at >= 0 ? rest.slice(at + 1) : rest).split(",").filter((h) => h !== "");
  return { nodes: hosts.map(parseHostPort), redisOptions };
}

function standaloneUrl(opts: ConnectionOptions): string {
  return opts.url ?? (opts.seeds?.[0] !== undefined ? `redis://${opts.seeds[0]}` : "redis://127.0.0.1:6379");
}

/** Longest wait between two reconnect attempts to a store that is down, in ms. */
export const RECONNECT_MAX_DELAY_MS = 1000;

/**
 * How every store connection rides out an outage (one place for all of them). iovalkey's default
 * rejects the commands queued on a connection after 20 failed reconnects (~10 s), which turned a
 * `complete` sent during a longer outage into UNAVAILABLE although the lease was still valid. With
 * no such limit a command waits for the store however long it is down: every worker write is
 * idempotent (fence + replay reconciliation; creates by idempotency key), and a caller that will
 * not wait has its own deadline. Reconnects back off to {@link RECONNECT_MAX_DELAY_MS}, so a
 * returning store is in use again within about a second.
 */
export const OUTAGE_OPTIONS: Readonly<Pick<RedisOptions, "maxRetriesPerRequest" | "retryStrategy">> = Object.freeze({
  maxRetriesPerRequest: null,
  retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), RECONNECT_MAX_DELAY_MS),
});

/** Pause between two attempts to re-open a per-node connection on its slot's owner, in ms. */
export const NODE_RETRY_MS = 200;
/** How often the Cluster command connection re-reads the slot map, in ms. */
export const SLOTS_REFRESH_MS = 1000;

/** The command connection: autopipelined; in Cluster mode FCALLs are not auto-pipelined. */
export function createCommandClient(opts: ConnectionOptions): CommandClient {
  const cluster = clusterAddress(opts);
  if (cluster) {
    return new Cluster(cluster.nodes, {
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: ["fcall", "fcall_ro"],
      slotsRefreshInterval: SLOTS_REFRESH_MS,
      // A command for a failed primary's slots is retried (with a fresh slot map) every 250 ms,
      // 16 times: ~4 s, longer than a replica's promotion takes; then it fails as UNAVAILABLE.
      retryDelayOnFailover: 250,
      retryDelayOnClusterDown: 250,
      redisOptions: { ...cluster.redisOptions, ...OUTAGE_OPTIONS },
    });
  }
  return new Redis(standaloneUrl(opts), { enableAutoPipelining: true, ...OUTAGE_OPTIONS });
}

/**
 * Closes a store connection: QUIT when it is up (pending replies still arrive), else at once — a
 * QUIT queued on a connection whose store is down would wait for the store (no retry limit).
 */
export async function closeConnection(c: CommandClient): Promise<void> {
  if (c.status !== "ready") {
    c.disconnect();
    return;
  }
  try { await c.quit(); } catch { c.disconnect(); }
}

/** Re-reads the Cluster's slot map (resolves also when that fails: callers check and retry). */
function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
}

/** The node owning `key`'s slot in the Cluster's current slot map, as "host:port". */
function slotOwner(cluster: Cluster, key: string): string {
  const owner = cluster.slots[keySlot(key)]?.[0];
  if (!owner) throw new Error(`no node owns the slot of ${key}`);
  return owner;
}

/**
 * A plain connection to one Cluster node that never reconnects: when the node goes away its
 * commands fail at once and the caller re-opens on the slot's current owner (see the module comment).
 */
function nodeConnection(cluster: Cluster, node: string, extra: RedisOptions = {}): Redis {
  const { host, port } = parseHostPort(node);
  return new Redis({
    ...(cluster.options.redisOptions ?? {}), host, port, enableAutoPipelining: false,
    retryStrategy: () => null, connectTimeout: 1000, ...extra,
  });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export type MessageListener = (channel: string, message: string) => void;

/**
 * SSUBSCRIBEs a fixed set of sharded channels: on the server itself (standalone) or on each
 * channel's slot owner (Cluster), and re-subscribes after a node drops them.
 */
export class ShardedSubscriber {
  private readonly conns: Redis[] = [];
  /** Cluster: the node each channel is subscribed on. */
  private readonly subscribedOn = new Map<string, string>();
  private closed = false;
  private rebuilding: Promise<void> | null = null;

  /**
   * @param onGap called each time the subscriptions are back after a break (a reconnect, a
   *   failover): messages published meanwhile were missed.
   */
  constructor(
    private readonly command: CommandClient,
    private readonly channels: readonly string[],
    private readonly listener: MessageListener,
    private readonly onGap: () => void = () => undefined,
  ) {}

  /** Resolves once every channel is subscribed. */
  async start(): Promise<void> {
    if (!this.command.isCluster) return this.startStandalone(this.command as Redis);
    const cluster = this.command as Cluster;
    await cluster.ping(); // slots are known once ready
    await this.startCluster(cluster);
    // A slot that moved to another node (a promotion the old owner did not report by closing).
    cluster.on("refresh", () => {
      if ([...this.subscribedOn].some(([ch, node]) => cluster.slots[keySlot(ch)]?.[0] !== node)) this.scheduleRebuild(cluster);
    });
  }

  /** `onTrouble`: called on a connection error or close (Cluster: rebuild from a fresh slot map). */
  private attach(conn: Redis, onTrouble?: () => void): void {
    conn.on("smessage", (channel: string, message: string) => this.listener(channel, message));
    // Standalone: the connection reconnects and re-subscribes on its own.
    conn.on("error", () => onTrouble?.());
    if (onTrouble) conn.on("close", onTrouble);
    this.conns.push(conn);
  }

  private async startStandalone(command: Redis): Promise<void> {
    // autoResubscribe (default) restores the subscriptions after a reconnect; subscribing again
    // is a no-op that tells when they are back.
    const conn = command.duplicate({ enableAutoPipelining: false, lazyConnect: false });
    this.attach(conn);
    await conn.ssubscribe(...this.channels);
    conn.on("ready", () => {
      conn.ssubscribe(...this.channels).then(() => this.onGap(), () => undefined);
    });
  }

  private async startCluster(cluster: Cluster): Promise<void> {
    const byNode = new Map<string, string[]>();
    for (const ch of this.channels) {
      const owner = slotOwner(cluster, ch);
      const list = byNode.get(owner) ?? [];
      list.push(ch);
      byNode.set(owner, list);
    }
    await Promise.all([...byNode].map(async ([node, chans]) => {
      const conn = nodeConnection(cluster, node, { autoResubscribe: false });
      // A node that loses a slot pushes an unsolicited sunsubscribe (iovalkey reports it as a
      // command-queue error); a dropped connection may come back as a different owner: either
      // way, rebuild every subscription from a fresh slot map.
      this.attach(conn, () => this.scheduleRebuild(cluster));
      // In Cluster mode one SSUBSCRIBE may only name channels of a single slot.
      await Promise.all(chans.map((ch) => conn.ssubscribe(ch)));
      for (const ch of chans) this.subscribedOn.set(ch, node);
    }));
  }

  /** Re-subscribes everything on the owners of a fresh slot map, every NODE_RETRY_MS until it works. */
  private scheduleRebuild(cluster: Cluster): void {
    if (this.closed || this.rebuilding) return;
    this.rebuilding = (async () => {
      for (;;) {
        await this.closeConns();
        if (this.closed) return;
        await refreshSlots(cluster);
        try {
          await this.startCluster(cluster);
          this.onGap();
          return;
        } catch {
          await pause(NODE_RETRY_MS);
        }
      }
    })().finally(() => { this.rebuilding = null; });
  }

  private async closeConns(): Promise<void> {
    this.subscribedOn.clear();
    const conns = this.conns.splice(0);
    await Promise.all(conns.map(async (c) => {
      c.removeAllListeners("close");
      c.removeAllListeners("error");
      c.on("error", () => undefined);
      await closeConnection(c);
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.closeConns();
  }
}

/**
 * A dedicated connection for blocking reads (XREAD BLOCK) on the keys of one hash slot: never the
 * command connection, so a BLOCK cannot stall FCALL traffic. In Cluster mode it is a plain
 * connection to the slot's owner; `unblock` sends CLIENT UNBLOCK from a non-blocking connection to
 * the same node.
 */
export interface BlockingConnection {
  readonly conn: Redis;
  /** Interrupts the blocking command in progress (it returns as on timeout); true when one was. */
  unblock(): Promise<boolean>;
  close(): Promise<void>;
}

export async function openBlockingConnection(command: CommandClient, slotKey: string): Promise<BlockingConnection> {
  let conn: Redis;
  let control: Redis;
  let ownControl = false;
  if (command.isCluster) {
    const cluster = command as Cluster;
    await cluster.ping();
    await refreshSlots(cluster); // after a failover: the promoted owner, not the dead one
    const owner = slotOwner(cluster, slotKey);
    conn = nodeConnection(cluster, owner);
    control = nodeConnection(cluster, owner);
    ownControl = true;
  } else {
    control = command as Redis;
    conn = control.duplicate({ enableAutoPipelining: false });
  }
  conn.on("error", () => undefined);
  if (ownControl) control.on("error", () => undefined);
  // The client id changes with every (re)connection.
  let clientId = Number(await conn.client("ID"));
  conn.on("ready", () => {
    conn.client("ID").then((id) => { clientId = Number(id); }, () => undefined);
  });
  return {
    conn,
    unblock: async () => Number(await control.call("CLIENT", "UNBLOCK", String(clientId))) === 1,
    close: async () => {
      conn.disconnect();
      if (ownControl) await closeConnection(control);
    },
  };
}

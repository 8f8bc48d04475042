import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** A loopback TCP proxy whose connections a test can cut (a dropped network path, not a server stop). */
export interface TcpProxy {
  /** "127.0.0.1:port" to connect to instead of the target. */
  readonly address: string;
  /** Destroys every open connection; new ones are still accepted. */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const colon = target.lastIndexOf(":");
  const host = target.slice(0, colon);
  const port = Number(target.slice(colon + 1));
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  };
  const server: Server = createServer((client) => {
    const upstream = connect(port, host);
    track(client);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    dropAll: () => { for (const s of [...sockets]) s.destroy(); },
    close: () => new Promise<void>((resolve) => {
      for (const s of [...sockets]) s.destroy();
      server.close(() => resolve());
    }),
  };
}

import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Names tried, in order, when no explicit binary is configured. */
export const SERVER_BINARIES = ["valkey-server", "redis-server"] as const;

/** The exact command that installs a server on Debian/Ubuntu (printed when none is found). */
export const INSTALL_HINT =
  "No valkey-server or redis-server binary found. Install one (Debian/Ubuntu: `sudo apt-get install -y redis-server`), " +
  "set VALKEY_SERVER_BIN to its path, or set VALKEY_URL=redis://host:port to use a running server.";

/** Finds an executable on PATH; null when absent. */
export function findOnPath(name: string, path = process.env["PATH"] ?? ""): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** The server binary to spawn: `explicit` if given, else the first of {@link SERVER_BINARIES} on PATH. */
export function findServerBinary(explicit?: string): string | null {
  if (explicit) return explicit;
  for (const name of SERVER_BINARIES) {
    const found = findOnPath(name);
    if (found) return found;
  }
  return null;
}

/**
 * The embedded server's data folder: created 0700 (its AOF holds every payload), locked against a
 * second gateway (a lock file with the owner's pid; a lock whose process is gone is stale and
 * taken over), and home of the server's generated password (0600).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

export const LOCK_FILE = "gateway.lock";
export const PASSWORD_FILE = "embedded-password";

/** A data folder this process holds. */
export interface DataDir {
  readonly path: string;
  /** The embedded server's password (generated once, kept in the folder). */
  readonly password: string;
  /** Removes the lock (idempotent). */
  release(): void;
}

/** True when a process with this pid exists (EPERM: it exists, owned by someone else). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Creates `path` 0700 (or tightens it), takes its lock, and reads or generates the password. */
export function openDataDir(path: string): DataDir {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
  const lock = join(path, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(lock, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw lockError(path, lock, err);
      const owner = Number(readFileSync(lock, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processExists(owner)) {
        throw new Error(`the data folder ${path} is in use by another gateway (pid ${owner}; lock file ${lock}). ` +
          "Stop it, or give this gateway its own FLOWFABRIC_DATA_DIR");
      }
      unlinkSync(lock); // stale: its process is gone
    }
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(lock, "utf8").trim() === String(process.pid)) unlinkSync(lock);
    } catch {
      // already gone
    }
  };
  try {
    return { path, password: passwordIn(path), release };
  } catch (err) {
    release();
    throw err;
  }
}

function lockError(path: string, lock: string, err: unknown): Error {
  return new Error(`cannot lock the data folder ${path} (${lock}): ${err instanceof Error ? err.message : String(err)}`);
}

/** The password kept in the folder (0600), generated on first use: 32 random bytes, hex. */
function passwordIn(path: string): string {
  const file = join(path, PASSWORD_FILE);
  if (!existsSync(file)) {
    const fd = openSync(file, "wx", 0o600);
    writeSync(fd, `${randomBytes(32).toString("hex")}\n`);
    closeSync(fd);
  }
  chmodSync(file, 0o600);
  const password = readFileSync(file, "utf8").trim();
  if (!/^[0-9a-f]{32,}$/.test(password)) throw new Error(`${file} does not hold a generated password; delete it to make a new one`);
  return password;
}

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findOnPath } from "../../gateway/src/embedded/server-binary.js";

/** A throwaway CA with a server certificate (127.0.0.1, localhost) and a client certificate, made by `openssl`. */
export interface TestPki {
  readonly dir: string;
  /** Paths of the PEM files. */
  readonly files: { readonly ca: string; readonly serverCert: string; readonly serverKey: string; readonly clientCert: string; readonly clientKey: string };
  /** Their contents. */
  readonly pem: { readonly ca: Buffer; readonly clientCert: Buffer; readonly clientKey: Buffer };
  remove(): void;
}

/** Generates a CA and two leaf certificates (P-256, one day) in a temp folder. */
export function makeTestPki(): TestPki {
  const openssl = findOnPath("openssl");
  if (!openssl) throw new Error("openssl is needed to make test certificates: sudo apt-get install -y openssl");
  const dir = mkdtempSync(join(tmpdir(), "ff-tls-"));
  const f = (name: string): string => join(dir, name);
  const run = (...args: string[]): void => {
    const r = spawnSync(openssl, args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
  };
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run("req", "-x509", ...key, "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "1", "-subj", "/CN=flowfabric-test-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  const leaf = (name: string, ext: string): void => {
    run("req", ...key, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/CN=flowfabric-test-${name}`);
    writeFileSync(f(`${name}.ext`), ext);
    run("x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f(`${name}.pem`), "-days", "1", "-extfile", f(`${name}.ext`));
  };
  leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  leaf("client", "extendedKeyUsage=clientAuth\n");
  const files = { ca: f("ca.pem"), serverCert: f("server.pem"), serverKey: f("server.key"), clientCert: f("client.pem"), clientKey: f("client.key") };
  return {
    dir,
    files,
    pem: { ca: readFileSync(files.ca), clientCert: readFileSync(files.clientCert), clientKey: readFileSync(files.clientKey) },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * The workspace packages' boundaries: what each exports map offers is exactly what tsconfig.json's
 * `paths` and jest's moduleNameMapper resolve to sources inside the repository, and every package
 * a workspace's sources import is one of its own declared dependencies (so the published SDK
 * installs with what it needs and nothing of the gateway's).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative } from "node:path";
import * as ts from "typescript";

const ROOT = join(__dirname, "../..");
const WORKSPACES = ["sdk-ts", "gateway"] as const;

interface PackageJson {
  name: string;
  exports: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  workspaces?: string[];
}

function packageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(ROOT, dir, "package.json"), "utf8")) as PackageJson;
}

function tsconfigPaths(): Record<string, string[]> {
  const { config, error } = ts.readConfigFile(join(ROOT, "tsconfig.json"), ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, "\n"));
  return (config as { compilerOptions: { paths: Record<string, string[]> } }).compilerOptions.paths;
}

function jestMappers(): Record<string, string> {
  return (require(join(ROOT, "jest.config.cjs")) as { moduleNameMapper: Record<string, string> }).moduleNameMapper;
}

/** Module names of a package's exports map ("@flowfabric/sdk", "@flowfabric/sdk/wire"). */
function entryPoints(pkg: PackageJson): string[] {
  return Object.keys(pkg.exports).filter((subpath) => subpath !== "./package.json").map((subpath) => pkg.name + subpath.slice(1));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts") && !file.split("/").includes("gen"))
    .map((file) => join(dir, file));
}

/** Package names (not subpaths) of the bare specifiers a source file imports or re-exports. */
function importedPackages(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022);
  const names: string[] = [];
  for (const statement of source.statements) {
    if ((ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier && ts.isStringLiteral(statement.moduleSpecifier)) {
      const spec = statement.moduleSpecifier.text;
      if (spec.startsWith(".") || spec.startsWith("node:") || builtinModules.includes(spec)) continue;
      names.push(spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/"));
    }
  }
  return names;
}

test("the root package is private and its workspaces are sdk-ts and gateway", () => {
  const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as PackageJson & { private?: boolean };
  expect(root.private).toBe(true);
  expect(root.workspaces).toEqual([...WORKSPACES]);
});

test("every entry point in an exports map resolves to an existing source file, the same in tsconfig paths and in jest", () => {
  const paths = tsconfigPaths();
  const mappers = jestMappers();
  const entries = WORKSPACES.flatMap((dir) => entryPoints(packageJson(dir)));
  expect(entries).toEqual(expect.arrayContaining(["@flowfabric/sdk", "@flowfabric/sdk/wire", "@flowfabric/gateway"]));
  // Nothing beyond the exports maps is mapped to sources (no deep imports that a build would refuse).
  expect(Object.keys(paths).sort()).toEqual([...entries].sort());
  for (const entry of entries) {
    const [tsPath] = paths[entry]!;
    const jestPath = mappers[`^${entry}$`];
    expect({ entry, jest: jestPath }).toEqual({ entry, jest: `<rootDir>/${relative(ROOT, join(ROOT, tsPath!))}` });
    expect(existsSync(join(ROOT, tsPath!))).toBe(true);
  }
});

test("the SDK's sources import only its own dependencies and peers, given as semver ranges", () => {
  const sdk = packageJson("sdk-ts");
  const declared = { ...sdk.dependencies, ...sdk.peerDependencies };
  const imported = new Set(sourceFiles(join(ROOT, "sdk-ts/src")).flatMap(importedPackages));
  expect([...imported].filter((name) => !(name in declared))).toEqual([]);
  expect(Object.keys(sdk.peerDependencies ?? {})).toEqual(["@opentelemetry/api"]);
  for (const [name, range] of Object.entries(declared)) expect({ name, range }).toEqual({ name, range: expect.stringMatching(/^\^\d+\.\d+\.\d+$/) });
});

test("the gateway's sources import only its own dependencies, exactly pinned", () => {
  const gateway = packageJson("gateway");
  const declared = gateway.dependencies ?? {};
  const imported = new Set(sourceFiles(join(ROOT, "gateway/src")).flatMap(importedPackages));
  expect([...imported].filter((name) => !(name in declared))).toEqual([]);
  expect(imported.has("@flowfabric/sdk")).toBe(true);
  for (const [name, version] of Object.entries(declared)) expect({ name, version }).toEqual({ name, version: expect.stringMatching(/^\d+\.\d+\.\d+$/) });
});

test("@flowfabric/sdk/wire re-exports every generated stub and every transport module (the gateway has no other way in)", () => {
  const wire = readFileSync(join(ROOT, "sdk-ts/src/wire.ts"), "utf8");
  const shared = ["gen/flowfabric/v1", "transport"].flatMap((dir) =>
    readdirSync(join(ROOT, "sdk-ts/src", dir)).filter((file) => file.endsWith(".ts")).map((file) => `./${dir}/${file.replace(/\.ts$/, ".js")}`));
  expect(shared.length).toBeGreaterThan(5);
  expect(shared.filter((module) => !wire.includes(`export * from "${module}";`))).toEqual([]);
});

/** Jest runs TypeScript through swc (CommonJS); type-checking is `npm run typecheck`. */
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

/**
 * The workspace packages' entry points resolve to their sources, as in tsconfig.json's `paths`,
 * so tests need no build: each entry of a package's exports map (e.g. `@flowfabric/sdk/wire` ->
 * ./dist/cjs/wire.js) maps to the source file it is compiled from (sdk-ts/src/wire.ts).
 */
function sourceMappers(dir, outDir) {
  const { name, exports } = JSON.parse(readFileSync(join(__dirname, dir, "package.json"), "utf8"));
  return Object.entries(exports)
    .filter(([subpath]) => subpath !== "./package.json")
    .map(([subpath, target]) => {
      const js = typeof target.require === "object" ? target.require.default : target.default;
      const source = js.replace(`./${outDir}/`, "src/").replace(/\.js$/, ".ts");
      return [`^${name}${subpath.slice(1)}$`, `<rootDir>/${dir}/${source}`];
    });
}

/** Module name -> source file, for every workspace package (test/packages checks it against tsconfig.json). */
const workspaceSources = Object.fromEntries([...sourceMappers("sdk-ts", "dist/cjs"), ...sourceMappers("gateway", "dist")]);

module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  moduleNameMapper: {
    ...workspaceSources,
    "^(\\.{1,2}/.*)\\.js$": "$1",
  },
  transform: {
    "^.+\\.ts$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
  },
  testTimeout: 30000,
  maxWorkers: 2,
};

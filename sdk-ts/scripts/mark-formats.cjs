/**
 * After `tsc` wrote dist/cjs and dist/esm: one package.json in each tells Node (and TypeScript's
 * nodenext resolution) which module format the .js and .d.ts files below it are.
 */
const { writeFileSync } = require("node:fs");
const { join } = require("node:path");

const dist = join(__dirname, "..", "dist");
writeFileSync(join(dist, "cjs", "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
writeFileSync(join(dist, "esm", "package.json"), `${JSON.stringify({ type: "module" })}\n`);

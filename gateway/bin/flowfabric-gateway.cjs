#!/usr/bin/env node
// The `flowfabric-gateway` executable: runs the compiled gateway (gateway/dist, built by
// `npm run build` or `npm start`); no TypeScript compiler at run time.
try {
  require.resolve("../dist/main.js");
} catch {
  process.stderr.write("flowfabric-gateway: not built yet; run `npm run build` (or `npm start`) at the repository root first\n");
  process.exit(1);
}
require("../dist/main.js");

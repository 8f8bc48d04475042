import tseslint from "typescript-eslint";

/**
 * Package boundaries: a package is reached only through its exports map (`@flowfabric/sdk`,
 * `@flowfabric/sdk/wire`), never by a relative path into its folder or a deep subpath.
 * Dependencies run one way: gateway -> SDK.
 */
const SDK_ENTRY = "import the SDK through its public entry points: @flowfabric/sdk or @flowfabric/sdk/wire";
const noDeepImports = (...patterns) => ["error", { patterns }];

export default tseslint.config(
  { ignores: ["node_modules/**", "**/dist/**", "sdk-ts/src/gen/**", "examples/**/gen/**", ".flowfabric/**", ".bench/**"] },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/await-thenable": "error",
    },
  },
  {
    files: ["gateway/**/*.ts"],
    rules: {
      "no-restricted-imports": noDeepImports(
        { regex: "(^|/)sdk-ts(/|$)", message: SDK_ENTRY },
        { regex: "^@flowfabric/sdk/(?!wire$)", message: SDK_ENTRY },
      ),
    },
  },
  {
    files: ["sdk-ts/**/*.ts"],
    rules: {
      "no-restricted-imports": noDeepImports(
        { regex: "(^|/)gateway(/|$)|^@flowfabric/gateway", message: "the SDK never depends on the gateway" },
        { regex: "^(\\.\\./){3,}", message: "the SDK imports nothing outside sdk-ts/src" },
      ),
    },
  },
);

import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "sdk-ts/src/gen/**", "examples/**/gen/**", ".flowfabric/**", ".bench/**"] },
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
);

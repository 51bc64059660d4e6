import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The build goes into the Python package, which serves it (stellarstack.panel.web.spa) and
// ships it in the wheel. The nonce placeholder is replaced by the panel in every response.
const outDir = fileURLToPath(new URL("../stellarstack/panel/web/ui", import.meta.url));

export default defineConfig({
  plugins: [react()],
  html: { cspNonce: "__STELLARSTACK_CSP_NONCE__" },
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // Small enough that inlining would need data: URLs the CSP would have to allow.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 800,
  },
  server: {
    // `npm run dev`: the panel runs on :8000 (`make run`); the dev server forwards to it.
    proxy: {
      "/api": { target: "http://localhost:8000", ws: true },
      "/login": "http://localhost:8000",
      "/setup": "http://localhost:8000",
      "/static": "http://localhost:8000",
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});

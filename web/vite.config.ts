import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The reference web app. `npm run web:build` writes web/dist, which the gateway serves at `/`;
 * `npm run web:dev` serves it with hot reload and proxies /graphql (HTTP and WebSocket) to a running
 * gateway (SIBYL_URL, default http://127.0.0.1:4000).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  // Preact's automatic JSX runtime (TSX is transformed by Vite itself; no framework plugin needed).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/graphql': { target: process.env.SIBYL_URL ?? 'http://127.0.0.1:4000', ws: true, changeOrigin: true },
    },
  },
});

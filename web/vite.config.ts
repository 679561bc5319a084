import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The reference web app and the GraphQL explorer (two pages, one build). `npm run web:build` writes
 * web/dist, which the gateway serves at `/` (the app) and `/explorer/` (GraphiQL, explorer/index.html);
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
    // The explorer's Monaco editor is one ~2.8 MB chunk, loaded only by /explorer/ (the app's own
    // chunks stay far below this).
    chunkSizeWarningLimit: 3_000,
    rolldownOptions: {
      // GraphiQL's dependencies mark modules "use client" (for React Server Components); meaningless in
      // a browser bundle, and a hundred warnings on every `npm install` would bury real ones.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
      input: {
        app: fileURLToPath(new URL('index.html', import.meta.url)),
        explorer: fileURLToPath(new URL('explorer/index.html', import.meta.url)),
      },
    },
  },
  server: {
    proxy: {
      '/graphql': { target: process.env.SIBYL_URL ?? 'http://127.0.0.1:4000', ws: true, changeOrigin: true },
    },
  },
});

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';

/**
 * What `GET /graphql` shows a browser (EXPLORER), and the self-hosted explorer at {@link EXPLORER_PATH}.
 * See docs/decisions/explorer.md for why Sandbox stays the development default and why production
 * serves GraphiQL.
 *
 * - `sandbox`: Apollo Sandbox, loaded from Apollo's CDN, with a bar linking to the built-in explorer
 *   and the web app; when Sandbox's script cannot be loaded (offline, blocked CDN) the page moves to
 *   the built-in explorer by itself.
 * - `graphiql`: the built-in explorer (GraphiQL, built with the web app into `<dir>/explorer/`).
 * - `off`: no page; `/explorer/` is not served either.
 */
export type ExplorerPage = 'sandbox' | 'graphiql' | 'off';

export interface ExplorerOptions {
  page: ExplorerPage;
  /** Let Apollo Sandbox send its usage telemetry to Apollo (SANDBOX_TELEMETRY); off unless asked. */
  sandboxTelemetry: boolean;
  /** The web build (WEB_APP_DIR): the explorer is its `explorer/index.html`. */
  dir: string;
}

/** Where the self-hosted explorer is served (and what every page links to). */
export const EXPLORER_PATH = '/explorer/';

export function explorerIndex(dir: string): string {
  return path.join(dir, 'explorer', 'index.html');
}

export function explorerLandingPage(options: ExplorerOptions): ApolloServerPlugin<BaseContext> {
  switch (options.page) {
    case 'off':
      return ApolloServerPluginLandingPageDisabled();
    case 'graphiql':
      return graphiqlLandingPage(options.dir);
    case 'sandbox':
      return sandboxWithFallback(options.sandboxTelemetry);
  }
}

/**
 * The explorer's own page, read on each visit (it is small, and a rebuild while the gateway runs is
 * then picked up). Its assets are absolute (`/assets/…`), so the page works at /graphql as it does at
 * /explorer/, and its endpoint is `/graphql` either way.
 */
function graphiqlLandingPage(dir: string): ApolloServerPlugin<BaseContext> {
  return {
    async serverWillStart() {
      return {
        async renderLandingPage() {
          return { html: () => readFile(explorerIndex(dir), 'utf8').catch(() => EXPLORER_NOT_BUILT) };
        },
      };
    },
  };
}

/**
 * Apollo's Sandbox page, with our links and an offline fallback added. The page carries its own
 * Content-Security-Policy (a `<meta>` with a per-render nonce for its inline script and style), so
 * what we add uses the same nonce.
 */
function sandboxWithFallback(runTelemetry: boolean): ApolloServerPlugin<BaseContext> {
  const sandbox = ApolloServerPluginLandingPageLocalDefault({ embed: { runTelemetry }, includeCookies: false });
  return {
    async serverWillStart(service) {
      const listener = await sandbox.serverWillStart?.(service);
      const render = listener?.renderLandingPage;
      if (!render) throw new Error('Apollo Sandbox landing page plugin rendered no page');
      const htmlOf = async (page: Awaited<ReturnType<typeof render>>) => (typeof page.html === 'string' ? page.html : page.html());
      // Once at start, so a Sandbox page we can no longer add the offline pointer to stops the gateway
      // here rather than failing each visit.
      withExplorerLinks(await htmlOf(await render()));
      return {
        async renderLandingPage() {
          const page = await render();
          return {
            html: async () => withExplorerLinks(await htmlOf(page)),
          };
        },
      };
    },
  };
}

/**
 * Adds the link bar and the offline fallback to Apollo's Sandbox page (exported for its test). The bar
 * goes first in the body, so it shows even while Sandbox's script is still loading (a CDN that never
 * answers blocks the rest of the page); the fallback goes last, after that script has run or failed.
 */
export function withExplorerLinks(html: string): string {
  const nonce = /<script nonce="([0-9a-f]+)"/.exec(html)?.[1];
  // Without the nonce our additions would be refused by the page's own policy: say so loudly, since a
  // Sandbox page without its offline pointer is the problem this module exists for.
  if (!nonce || !html.includes('<body>') || !html.includes('</body>')) {
    throw new Error('Apollo Sandbox page changed shape: cannot add the explorer links');
  }
  const bar = `
<style nonce="${nonce}">
  .sibyl-bar { position: fixed; top: 0; left: 0; right: 0; height: 2rem; box-sizing: border-box; padding: 0.35rem 1rem;
    font: 14px/1.3 system-ui, sans-serif; background: #1f2937; color: #e5e7eb; z-index: 10; }
  .sibyl-bar a { color: #93c5fd; margin-left: 1rem; }
  #embeddableSandbox { top: 2rem; height: calc(100vh - 2rem); }
  .fallback { margin-top: 2rem; }
</style>
<nav class="sibyl-bar">Sibyl
  <a href="${EXPLORER_PATH}">Built-in explorer (GraphiQL, works offline)</a>
  <a href="/">Web app</a>
</nav>`;
  const fallback = `
<script nonce="${nonce}">
  // Sandbox's script (Apollo's CDN) has run or failed by now: when it did not load, nothing will draw
  // on this page, so open the explorer this gateway serves instead.
  if (typeof window.EmbeddedSandbox !== 'function') location.replace(${JSON.stringify(EXPLORER_PATH)});
</script>
`;
  return html.replace('<body>', `<body>${bar}`).replace('</body>', `${fallback}</body>`);
}

/** Served at /graphql (EXPLORER=graphiql) and /explorer/ while the web build is missing. */
export const EXPLORER_NOT_BUILT = `<!doctype html>
<meta charset="utf-8"><title>Sibyl: explorer not built</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The GraphQL explorer is not built</h1>
<p>The gateway is running and answers GraphQL at <code>/graphql</code>.</p>
<p>The explorer is built with the web app: run <code>npm run web:build</code> (or <code>npm start</code>, which builds
both when <code>web/dist</code> is missing or stale), then reload this page.</p>
</body>`;

/**
 * The self-hosted GraphQL explorer: GraphiQL, bundled by Vite with the web app and served by the
 * gateway at /explorer/ (and at /graphql when EXPLORER=graphiql). Everything it loads is same-origin
 * (scripts, Monaco's workers, fonts inlined in the CSS), so it works offline and under the gateway's
 * Content-Security-Policy. React is GraphiQL's peer; the web app itself stays on Preact, and this
 * file uses createElement rather than JSX because the web build's JSX runtime is Preact's.
 */
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { authorization, readApiKey } from '../api/auth.js';
import './explorer.css';

const endpoint = new URL('/graphql', location.href);
const subscriptionUrl = new URL(endpoint);
subscriptionUrl.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';

const fetcher = createGraphiQLFetcher({
  url: endpoint.href,
  // Subscriptions go over graphql-ws; the headers editor's contents become connectionParams, where the
  // gateway reads `authorization` (or `Authorization`) as it reads the HTTP header.
  subscriptionUrl: subscriptionUrl.href,
  // Plain JSON: the gateway answers no multipart (no @defer/@stream), so no need to ask for it.
  enableIncrementalDelivery: false,
});

// The web app's key (same origin, same tab) is offered as the header, so a user signed in there is
// signed in here. Headers are not persisted by GraphiQL (shouldPersistHeaders defaults to false).
const bearer = authorization(readApiKey());
const initialHeaders = bearer ? JSON.stringify({ Authorization: bearer }, null, 2) : '';

const DEFAULT_QUERY = `# Sibyl's GraphQL explorer. Run with Ctrl-Enter or the ▶ button.
#
# Credentials: open "Headers" below and add
#   { "Authorization": "Bearer <API key or JWT>" }
# (HTTP and subscriptions use it alike). The schema and its docs need the analyst role
# where introspection is restricted (production).

{ health { status } }
`;

const params = new URLSearchParams(location.search);

createRoot(document.getElementById('explorer')!).render(
  createElement(
    GraphiQL,
    {
      fetcher,
      defaultQuery: DEFAULT_QUERY,
      // A link such as /explorer/?query=… opens with that operation.
      ...(params.get('query') !== null && { initialQuery: params.get('query')! }),
      initialHeaders,
      defaultEditorToolsVisibility: 'headers',
    },
    createElement(
      GraphiQL.Logo,
      null,
      createElement('a', { href: '/', className: 'sibyl-home', title: 'The Sibyl web app' }, 'Sibyl'),
      ' explorer',
    ),
  ),
);

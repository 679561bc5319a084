import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { authorization } from './auth.js';
import { LinkStatusStore } from './connection.js';

/** Close codes after which retrying cannot help: refused credentials, bad requests, server errors. */
const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4406, 4409, 4429, 4500]);

export interface Api {
  client: Client;
  link: LinkStatusStore;
  dispose(): void;
}

/**
 * One GraphQL client per API key: queries over HTTP POST to /graphql (same origin), subscriptions over
 * graphql-ws on the same path. Built again when the key changes, so both transports use the new one.
 */
export function createApi(apiKey: string): Api {
  const auth = authorization(apiKey);
  const link = new LinkStatusStore();
  const ws = createLiveLink(auth, link);
  const client = new Client({
    url: '/graphql',
    // POST with a JSON body: Apollo's CSRF prevention refuses GET queries without a preflight header.
    preferGetMethod: false,
    fetchOptions: (): RequestInit => (auth ? { headers: { authorization: auth } } : {}),
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              return { unsubscribe: ws.subscribe(input, sink) };
            },
          };
        },
      }),
    ],
  });
  return { client, link, dispose: () => void ws.dispose() };
}

function createLiveLink(auth: string | undefined, link: LinkStatusStore): WsClient {
  const url = new URL('/graphql', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  let lost = false;
  return createWsClient({
    url: url.href,
    connectionParams: () => (auth ? { authorization: auth } : {}),
    // Retry for as long as the page is open: a gateway restart or a network blip must heal by itself.
    retryAttempts: Number.POSITIVE_INFINITY,
    // Quick first retries (0.5 s, 1 s, 2 s …, at most 10 s), with jitter so many tabs do not stampede.
    retryWait: (retries) =>
      new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** retries) * (0.75 + Math.random() / 2))),
    shouldRetry: (event) => !(isCloseEvent(event) && FATAL_CLOSE_CODES.has(event.code)),
    on: {
      connecting: () => link.set({ state: lost ? 'reconnecting' : 'connecting' }),
      connected: () => {
        link.set({ state: 'connected', detail: undefined, reconnects: link.get().reconnects + (lost ? 1 : 0) });
        lost = false;
      },
      closed: (event) => {
        if (isCloseEvent(event) && FATAL_CLOSE_CODES.has(event.code)) {
          link.set({ state: 'refused', detail: event.reason || `closed with code ${event.code}` });
        } else if (isCloseEvent(event) && event.code === 1000) {
          link.set({ state: 'idle' }); // closed on purpose: nothing is subscribed any more
        } else {
          lost = true;
          link.set({ state: 'lost', detail: isCloseEvent(event) && event.reason ? event.reason : undefined });
        }
      },
    },
  });
}

function isCloseEvent(value: unknown): value is CloseEvent {
  return typeof value === 'object' && value !== null && 'code' in value && typeof (value as { code: unknown }).code === 'number';
}

import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface GraphQLResponse<T> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: GraphQLFormattedError[];
}

/** POSTs a typed operation (from test/generated) and returns status, headers and the typed result. */
export async function execute<T, V>(
  baseUrl: string,
  document: TypedDocumentNode<T, V>,
  variables?: V,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  return postQuery<T>(baseUrl, print(document), variables as Record<string, unknown> | undefined, headers);
}

/** POSTs raw query text: for the malformed and hostile queries the typed documents cannot express. */
export async function postQuery<T = unknown>(
  baseUrl: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T | null; errors?: GraphQLFormattedError[] };
  return { status: response.status, headers: response.headers, ...body };
}

/** A graphql-ws client that fails fast (no retries), for asserting on what the server does. */
export function wsClient(baseUrl: string, options: { connectionParams?: Record<string, unknown> } = {}): Client {
  return createClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: options.connectionParams,
  });
}

/** Runs one query or mutation over graphql-ws and resolves with its single result. */
export function wsExecute<T = unknown>(client: Client, query: string, variables?: Record<string, unknown>) {
  return new Promise<{ data?: T | null; errors?: readonly GraphQLFormattedError[] }>((resolve, reject) => {
    let result: { data?: T | null; errors?: readonly GraphQLFormattedError[] } = {};
    client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          result = value as typeof result;
        },
        error: (error) => {
          if (Array.isArray(error)) resolve({ errors: error as GraphQLFormattedError[] });
          else reject(error);
        },
        complete: () => resolve(result),
      },
    );
  });
}

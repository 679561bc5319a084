/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
};

/** The state of one part the gateway depends on. */
export type ComponentHealth = {
  __typename?: 'ComponentHealth';
  /** What was seen: engine and version, latency, or the error. */
  detail?: Maybe<Scalars['String']['output']>;
  /** database, redis, models, … */
  name: Scalars['String']['output'];
  /** `ok`, `degraded` (serving with a fallback) or `down` (not ready) */
  status: Scalars['String']['output'];
};

/** Readiness of this gateway instance: the same picture as `GET /health/ready`. */
export type Health = {
  __typename?: 'Health';
  components: Array<ComponentHealth>;
  /** `ok`, `degraded`, `down`, or `draining` while shutting down */
  status: Scalars['String']['output'];
  /** Gateway version */
  version: Scalars['String']['output'];
};

export type Query = {
  __typename?: 'Query';
  /** Readiness of this instance and each component it depends on. */
  health: Health;
};

export type HealthQueryVariables = Exact<{ [key: string]: never; }>;


export type HealthQuery = { health: { status: string, version: string, components: Array<{ name: string, status: string, detail: string | null }> } };


export const HealthDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Health"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"health"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"version"}},{"kind":"Field","name":{"kind":"Name","value":"components"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"detail"}}]}}]}}]}}]} as unknown as DocumentNode<HealthQuery, HealthQueryVariables>;
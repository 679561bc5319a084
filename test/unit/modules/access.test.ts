import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GraphQLError } from 'graphql';
import { getMetadataStorage, type ResolverData } from 'type-graphql';
import { DEVELOPMENT_PRINCIPAL, authChecker, roleAtLeast, type Principal } from '../../../src/modules/access/index.js';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';

/**
 * Root fields anyone may call without credentials. Adding one here is a security decision: say why
 * next to its resolver.
 */
const PUBLIC_ROOT_FIELDS = new Set(['Query.health']);

const check = (principal: Principal | undefined, roles: string[]) => {
  try {
    return authChecker({ context: { principal } } as ResolverData<{ principal?: Principal }>, roles as never);
  } catch (error) {
    return (error as GraphQLError).extensions.code;
  }
};
const as = (role: Principal['role']): Principal => ({ id: `key:${role}`, name: role, role, via: 'apikey' });

describe('roles and the authChecker', () => {
  test('roles are ordered viewer < analyst < admin', () => {
    assert.ok(roleAtLeast('admin', 'viewer') && roleAtLeast('analyst', 'analyst') && !roleAtLeast('viewer', 'analyst'));
  });

  test('anonymous → UNAUTHENTICATED; role too low → FORBIDDEN; enough → allowed', () => {
    assert.equal(check(undefined, ['viewer']), 'UNAUTHENTICATED');
    assert.equal(check(undefined, []), 'UNAUTHENTICATED');
    assert.equal(check(as('viewer'), ['admin']), 'FORBIDDEN');
    assert.equal(check(as('analyst'), ['admin']), 'FORBIDDEN');
    assert.equal(check(as('viewer'), ['viewer']), true);
    assert.equal(check(as('admin'), ['analyst']), true);
    assert.equal(check(as('viewer'), []), true);
    assert.equal(check(DEVELOPMENT_PRINCIPAL, ['admin']), true);
  });

  test('a misspelt role in @Authorized fails loudly instead of letting everyone in', () => {
    assert.throws(
      () => authChecker({ context: { principal: as('admin') } } as ResolverData<{ principal?: Principal }>, ['admn' as never]),
      /not a role/,
    );
  });
});

describe('the access-control convention', () => {
  test('every Query, Mutation and Subscription field has @Authorized(Role.X) unless listed as public', async () => {
    await buildGatewaySchema(); // registers every resolver's metadata
    const storage = getMetadataStorage();
    const authorized = new Set(storage.authorizedFields.map((a) => `${a.target.name}.${a.fieldName}`));
    const classes = new Set(storage.authorizedResolver.map((a) => a.target.name));
    const roots = [
      ...storage.queries.map((r) => ({ root: 'Query', r })),
      ...storage.mutations.map((r) => ({ root: 'Mutation', r })),
      ...storage.subscriptions.map((r) => ({ root: 'Subscription', r })),
    ];
    assert.ok(roots.length > 0);
    const unguarded = roots
      .filter(({ root, r }) => !PUBLIC_ROOT_FIELDS.has(`${root}.${r.schemaName}`))
      .filter(({ r }) => !authorized.has(`${r.target.name}.${r.methodName}`) && !classes.has(r.target.name))
      .map(({ root, r }) => `${root}.${r.schemaName} (${r.target.name}.${r.methodName})`);
    assert.deepEqual(unguarded, [], `add @Authorized(Role.Viewer | Role.Analyst | Role.Admin) to: ${unguarded.join(', ')}`);
  });
});

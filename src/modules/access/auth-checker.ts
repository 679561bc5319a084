import type { ResolverData } from 'type-graphql';
import { ErrorCode, codedError } from '../../shared/errors.js';
import { unauthenticated } from './authenticator.js';
import { ROLES, isRole, roleAtLeast, type Principal, type Role } from './roles.js';

/**
 * type-graphql's authChecker for `@Authorized(...)`: the field runs when the context's principal has at
 * least the least role listed (`@Authorized()` with no role means any authenticated caller).
 * Refusals are errors with a code rather than `false`, so clients see UNAUTHENTICATED (no or bad
 * credentials) or FORBIDDEN (known caller, role too low) instead of type-graphql's generic message.
 */
// An arrow function on purpose: type-graphql treats anything with a `prototype` as a class to instantiate.
export const authChecker = ({ context }: ResolverData<{ principal?: Principal | undefined }>, roles: Role[]): boolean => {
  const principal = context.principal;
  if (!principal) throw unauthenticated('send "Authorization: Bearer <API key or JWT>" (connectionParams.authorization over WebSocket)');
  const required = leastOf(roles);
  if (required && !roleAtLeast(principal.role, required)) {
    throw codedError(ErrorCode.FORBIDDEN, `Forbidden: needs role ${required} or above (you are ${principal.role})`, {
      requiredRole: required,
    });
  }
  return true;
};

function leastOf(roles: readonly string[]): Role | undefined {
  for (const role of roles) if (!isRole(role)) throw new Error(`@Authorized("${role}"): not a role (${ROLES.join(', ')})`);
  return ROLES.find((r) => roles.includes(r));
}

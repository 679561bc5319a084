/**
 * Who may do what. Roles are ordered: each one may do everything the one before it may.
 *
 * | role      | may use                                                                     |
 * |-----------|-----------------------------------------------------------------------------|
 * | `viewer`  | predictions, strategies, the `signals` subscription                         |
 * | `analyst` | + history, trends, model metrics, explanations, introspection / Sandbox     |
 * | `admin`   | + model activation, API keys                                                |
 *
 * A resolver states the least role it needs with `@Authorized(Role.Analyst)` (type-graphql); see
 * `auth-checker.ts` and the README's "Access control" section.
 */
export const Role = {
  Viewer: 'viewer',
  Analyst: 'analyst',
  Admin: 'admin',
} as const;
export type Role = (typeof Role)[keyof typeof Role];

export const ROLES: readonly Role[] = [Role.Viewer, Role.Analyst, Role.Admin];

const RANK: Record<Role, number> = { viewer: 1, analyst: 2, admin: 3 };

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Whether `role` may do what `required` may. */
export function roleAtLeast(role: Role, required: Role): boolean {
  return RANK[role] >= RANK[required];
}

/**
 * The authenticated caller, on every Context. `id` is stable and safe to log (`key:<uuid>`,
 * `jwt:<sub>`, or `dev` when AUTH_MODE=off); it is never the credential itself.
 */
export interface Principal {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly via: 'apikey' | 'jwt' | 'off';
  /**
   * When the credential stops verifying by itself (epoch ms: a JWT's `exp` plus the clock tolerance);
   * undefined when it does not expire. A WebSocket connection is closed at this moment.
   */
  readonly expiresAt?: number;
}

/** Everyone is an admin when access control is off (development only; config refuses it in production). */
export const DEVELOPMENT_PRINCIPAL: Principal = Object.freeze({ id: 'dev', name: 'AUTH_MODE=off', role: Role.Admin, via: 'off' });

import 'reflect-metadata';
export { Role, ROLES, isRole, roleAtLeast, DEVELOPMENT_PRINCIPAL, type Principal } from './roles.js';
export { authChecker } from './auth-checker.js';
export { createAuthenticator, unauthenticated, type Authenticator } from './authenticator.js';
export { ApiKeysRepository, type ApiKeyRow } from './api-keys.repository.js';
export { ApiKeysService, API_KEY_PREFIX } from './api-keys.service.js';
export { ApiKeysResolver } from './api-keys.resolver.js';
export { revocationsOver, type Revocations } from './revocations.js';

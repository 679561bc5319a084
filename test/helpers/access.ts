import { ApiKeysRepository, ApiKeysService, type Role } from '../../src/modules/access/index.js';
import { AuditLog } from '../../src/modules/audit/index.js';
import type { TestGateway } from './gateway.js';

/** The API-key service over a test gateway's own database: what `npm run keys` does, in-process. */
export function apiKeysOf(server: TestGateway): {
  keys: ApiKeysService;
  audit: AuditLog;
  create(role: Role, name?: string): Promise<{ key: string; id: string }>;
} {
  const audit = new AuditLog(server.gateway.database.db);
  const keys = new ApiKeysService({ repository: new ApiKeysRepository(server.gateway.database.db), audit });
  return {
    keys,
    audit,
    async create(role, name = `test ${role}`) {
      const { key, record } = await keys.create({ name, role, actor: 'test' });
      return { key, id: record.id };
    },
  };
}

export const bearer = (credential: string) => ({ authorization: `Bearer ${credential}` });

import 'reflect-metadata';
import path from 'node:path';
import { emitSchemaDefinitionFile } from 'type-graphql';
import { type CliIo, parseCli, runAsCommand } from './args.js';
import { buildGatewaySchema } from '../schema/build-schema.js';

/**
 * Writes the committed `schema.graphql` from the code. CI runs this and fails if the file changed:
 * the SDL clients and codegen read must always be the one the server serves.
 */
const USAGE = `usage: npm run schema [-- <file>]

Writes the GraphQL schema the gateway serves, as SDL, to <file> (default: schema.graphql).
`;

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'schema', usage: USAGE, allowPositionals: true }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  if (parsed.positionals.length > 1) {
    io.err(`schema: one file at most\n\n${USAGE}`);
    return 2;
  }
  const target = path.resolve(parsed.positionals[0] ?? 'schema.graphql');
  const schema = await buildGatewaySchema();
  await emitSchemaDefinitionFile(target, schema);
  io.out(`wrote ${path.relative(process.cwd(), target)}\n`);
  return 0;
}

await runAsCommand(import.meta.url, 'schema', main);

import 'reflect-metadata';
import path from 'node:path';
import { emitSchemaDefinitionFile } from 'type-graphql';
import { buildGatewaySchema } from '../schema/build-schema.js';

/**
 * Writes the committed `schema.graphql` from the code. CI runs this and fails if the file changed:
 * the SDL clients and codegen read must always be the one the server serves.
 */
const target = path.resolve(process.argv[2] ?? 'schema.graphql');
const schema = await buildGatewaySchema();
await emitSchemaDefinitionFile(target, schema);
process.stdout.write(`wrote ${path.relative(process.cwd(), target)}\n`);

import { isInputObjectType, isInterfaceType, isObjectType, type GraphQLSchema } from 'graphql';

/**
 * Every field, argument and input field of `schema` without a description, as `Type.field`,
 * `Type.field(arg)` and `Input.field`. Introspection types are left out; so are root types' own
 * descriptions and enum values, which the check does not cover. `npm run drift` fails on any
 * (tools/check-schema-docs.ts): clients read the schema as the API's reference, in the explorer and in
 * codegen's types, so a field without one is an undocumented part of the contract.
 */
export function undocumentedSchemaParts(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const blank = (text: string | null | undefined) => !text || text.trim() === '';
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (blank(field.description)) missing.push(`${type.name}.${field.name}`);
        for (const arg of field.args) if (blank(arg.description)) missing.push(`${type.name}.${field.name}(${arg.name})`);
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) if (blank(field.description)) missing.push(`${type.name}.${field.name}`);
    }
  }
  return missing.sort();
}

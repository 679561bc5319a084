import { CriticalityLevel, diff, type Change } from '@graphql-inspector/core';
import { buildSchema, isInputObjectType, isInterfaceType, isObjectType, type GraphQLSchema } from 'graphql';

/**
 * The API-versioning check (docs/decisions/schema-versioning.md): what changed between the last released
 * schema (schema.baseline.graphql) and the one the code builds, and whether every breaking change is
 * allowed. A breaking change is allowed when it is listed in schema.accepted-changes.json, or when it
 * removes a field the baseline deprecated with a removal date that has passed.
 */

/** One listed breaking change: graphql-inspector's change type and path, and why it is accepted. */
export interface AcceptedChange {
  type: string;
  path: string;
  reason: string;
}

export interface CompatReport {
  /** Breaking changes neither listed nor due for removal: the check fails on these. */
  breaking: Change[];
  /** Breaking changes allowed, each with why. */
  allowed: Array<{ change: Change; why: string }>;
  /** Changes that may alter what existing clients see (e.g. a new enum value); reported, not failed. */
  dangerous: Change[];
  /** Deprecations new since the baseline whose reason does not follow the policy; the check fails on these. */
  policyViolations: string[];
  /** Accepted entries that match no change any more (stale after a baseline update): reported. */
  unusedAccepted: AcceptedChange[];
}

/** The removal date a deprecation reason must carry: "… removal after 2027-03-31". */
const REMOVAL_DATE = /removal after (\d{4}-\d{2}-\d{2})\b/i;
/** Days a deprecated field stays at least, counted from the day its deprecation is released. */
export const MIN_DEPRECATION_DAYS = 90;

/** `Type.field` (and `Type.field.arg` for arguments) → deprecation reason, for everything deprecated. */
function deprecations(schema: GraphQLSchema): Map<string, string> {
  const found = new Map<string, string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (field.deprecationReason) found.set(`${type.name}.${field.name}`, field.deprecationReason);
        for (const arg of 'args' in field ? field.args : []) {
          if (arg.deprecationReason) found.set(`${type.name}.${field.name}.${arg.name}`, arg.deprecationReason);
        }
      }
    }
  }
  return found;
}

export async function compareSchemas(
  baselineSdl: string,
  currentSdl: string,
  accepted: readonly AcceptedChange[],
  today: string = new Date().toISOString().slice(0, 10),
): Promise<CompatReport> {
  const baseline = buildSchema(baselineSdl);
  const current = buildSchema(currentSdl);
  const changes = await diff(baseline, current);
  const baselineDeprecations = deprecations(baseline);
  const report: CompatReport = { breaking: [], allowed: [], dangerous: [], policyViolations: [], unusedAccepted: [] };
  const used = new Set<AcceptedChange>();

  for (const change of changes) {
    if (change.criticality.level === CriticalityLevel.Dangerous) report.dangerous.push(change);
    if (change.criticality.level !== CriticalityLevel.Breaking) continue;
    const listed = accepted.find((entry) => entry.type === change.type && entry.path === change.path);
    if (listed) {
      used.add(listed);
      report.allowed.push({ change, why: `accepted: ${listed.reason}` });
      continue;
    }
    const removalDate = change.path ? REMOVAL_DATE.exec(baselineDeprecations.get(change.path) ?? '')?.[1] : undefined;
    if (change.type === 'FIELD_REMOVED' && removalDate !== undefined && removalDate <= today) {
      report.allowed.push({ change, why: `deprecated in the baseline with removal after ${removalDate}` });
      continue;
    }
    report.breaking.push(change);
  }

  const earliest = addDays(today, MIN_DEPRECATION_DAYS);
  for (const [path, reason] of deprecations(current)) {
    if (baselineDeprecations.has(path)) continue; // released already: judged when it was added
    const date = REMOVAL_DATE.exec(reason)?.[1];
    if (date === undefined) {
      policyViolations(report, path, reason, `its reason must end with "removal after YYYY-MM-DD"`);
    } else if (date < earliest) {
      policyViolations(report, path, reason, `the removal date must be at least ${MIN_DEPRECATION_DAYS} days away (${earliest} or later)`);
    }
  }
  report.unusedAccepted = accepted.filter((entry) => !used.has(entry));
  return report;
}

function policyViolations(report: CompatReport, path: string, reason: string, rule: string): void {
  report.policyViolations.push(`${path} @deprecated(reason: ${JSON.stringify(reason)}): ${rule}`);
}

function addDays(isoDate: string, days: number): string {
  return new Date(Date.parse(`${isoDate}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

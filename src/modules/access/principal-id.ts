/**
 * What text may name a caller. A principal id (`key:<uuid>`, `jwt:<sub>`) is written to `audit_log`,
 * `api_keys.created_by`, logs and rate-limit keys; a JWT's `sub` comes from outside. PostgreSQL `text`
 * refuses NUL, so an id holding one would make an admin action fail at its audit row; other control
 * characters, line separators and bidirectional overrides forge or hide lines in logs and listings.
 * Such credentials are refused when presented, so nothing downstream ever sees one.
 */

/** Longest principal id accepted (`jwt:` plus a `sub` of up to 251 characters; identity providers use far fewer). */
export const MAX_PRINCIPAL_ID_LENGTH = 255;

/**
 * C0/C1 control characters (NUL, newline, escape, DEL, …), line and paragraph separators, and the
 * bidirectional embeddings, overrides and isolates that reorder how text is displayed.
 */
const UNSAFE = /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u;

/** In a `u` regex a surrogate half matches only when it stands alone (a pair is one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why `text` may not stand in an id or a name of at most `max` characters, or undefined when it may. */
export function textProblem(text: string, max: number): string | undefined {
  if (text.length === 0) return 'is empty';
  if (text.length > max) return `is longer than ${max} characters`;
  // A lone surrogate is not Unicode text: drivers would silently write U+FFFD instead.
  if (LONE_SURROGATE.test(text)) return 'is not well-formed Unicode';
  if (UNSAFE.test(text)) return 'contains control characters';
  return undefined;
}

/** Why `id` is not an acceptable principal id, or undefined when it is. */
export function principalIdProblem(id: string): string | undefined {
  return textProblem(id, MAX_PRINCIPAL_ID_LENGTH);
}

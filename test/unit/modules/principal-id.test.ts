import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_PRINCIPAL_ID_LENGTH, principalIdProblem } from '../../../src/modules/access/index.js';

/**
 * Principal ids (`jwt:<sub>`, `key:<uuid>`) are refused when they hold anything that can break a
 * PostgreSQL text column (NUL, lone surrogates) or forge/hide log lines (control characters, line
 * separators, bidi overrides), or are absurdly long; everything else is accepted as is.
 */
const UNSAFE_CHARACTERS = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(0x7f + i)),
  '\u2028',
  '\u2029',
  ...'\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069',
  '\uD800',
  '\uDFFF',
];
const unsafe = fc.constantFrom(...UNSAFE_CHARACTERS);
/** Text without any of them (full Unicode, surrogate pairs included). */
const safeText = fc
  .string({ unit: 'binary', maxLength: 60 })
  .filter((s) => ![...s].some((c) => UNSAFE_CHARACTERS.includes(c)) && !/\p{Cs}/u.test(s));

describe('principal id validation (property-based)', () => {
  test('safe text of acceptable length is accepted unchanged', () => {
    fc.assert(
      fc.property(safeText, (sub) => {
        const id = `jwt:${sub || 'x'}`;
        assert.equal(principalIdProblem(id), undefined, JSON.stringify(id));
      }),
      { numRuns: 2_000 },
    );
  });

  test('one unsafe character anywhere is refused', () => {
    fc.assert(
      fc.property(safeText, unsafe, safeText, (before, bad, after) => {
        assert.match(principalIdProblem(`jwt:${before}${bad}${after}`) ?? '', /control characters|well-formed/);
      }),
      { numRuns: 2_000 },
    );
  });

  test('length: up to the maximum accepted, beyond it and empty refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 * MAX_PRINCIPAL_ID_LENGTH }), (length) => {
        const problem = principalIdProblem('a'.repeat(length));
        assert.equal(problem === undefined, length <= MAX_PRINCIPAL_ID_LENGTH, `${length}: ${problem}`);
      }),
    );
    assert.equal(principalIdProblem(''), 'is empty');
  });

  test('a surrogate pair is text (an emoji); either half alone is not', () => {
    assert.equal(principalIdProblem('jwt:😀'), undefined);
    assert.match(principalIdProblem('jwt:\uD83D') ?? '', /well-formed/);
    assert.match(principalIdProblem('jwt:\uDE00x') ?? '', /well-formed/);
  });
});

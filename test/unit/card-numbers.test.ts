// Request bodies are searched for card numbers (src/http/app.ts): where one is found, the answer
// names the field; identifiers (sku, reference, id…) are not searched.
import { describe, expect, it } from 'vitest';
import { findCardNumber } from '../../src/http/app.ts';

const PAN = '4111 1111 1111 1111';
let deep: unknown = { note: PAN };
for (let i = 0; i < 25; i++) deep = { x: deep };

describe('findCardNumber', () => {
  it.each([
    { name: 'a top-level field', body: { token: PAN }, path: 'token' },
    { name: 'in an array of an object', body: { customer: { notes: ['fine', '5555555555554444'] } }, path: 'customer.notes[1]' },
    { name: 'in an object of a top-level array', body: [{ a: 'x' }, { b: '4111111111111111' }], path: '[1].b' },
    { name: 'the body itself', body: PAN, path: '' },
    { name: 'nested arrays', body: { m: [[1], ['a', PAN]] }, path: 'm[1][1]' },
    { name: 'an identifier field is not searched', body: { sku: '4111111111111111', external_reference: PAN }, path: null },
    { name: 'a number that fails the Luhn check', body: { note: '4111 1111 1111 1112' }, path: null },
    { name: 'deeper than 20 levels is not searched', body: deep, path: null },
    { name: 'the first hit, in field order', body: { a: { b: PAN }, c: PAN }, path: 'a.b' },
  ])('$name', ({ body, path }) => {
    expect(findCardNumber(body, '')).toBe(path);
  });
});

// The nesting scan of JSON bodies (http/json-body.ts) as bytes arrive in arbitrary chunks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NestingScan } from '../src/http/json-body.js';

const exceeds = (text: string, max: number, chunk: number) => {
  const scan = new NestingScan(max);
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += chunk) if (scan.feed(bytes.subarray(i, i + chunk))) return true;
  return false;
};

describe('JSON nesting scan', () => {
  it('counts arrays and objects, not brackets inside strings, whatever the chunking', () => {
    const cases: [string, number, boolean][] = [
      ['{"a":[1,{"b":[]}]}', 4, false],
      ['{"a":[1,{"b":[]}]}', 3, true],
      ['[[[]]]', 3, false],
      ['[[[[]]]]', 3, true],
      [`{"s":"${'['.repeat(50)}"}`, 1, false],
      ['{"s":"\\"[[[[","t":1}', 1, false], // an escaped quote does not end the string
      ['{"s":"\\\\","t":[[[]]]}', 3, true], // an escaped backslash does not escape the quote after it
      ['{"€":"[[[","x":[{}]}', 3, false], // multi-byte characters split across chunks
    ];
    for (const [text, max, want] of cases) {
      for (const chunk of [1, 2, 3, 7, 1024]) assert.equal(exceeds(text, max, chunk), want, `${text} max ${max} chunk ${chunk}`);
    }
  });
});

/** The diff's field-by-field comparison: typed differences, collapsed paths, ignore rules, unordered arrays. */
import { describe, expect, it } from 'vitest';
import { compare, ignoreRule, parseBody, type Answer } from '../src/diff/index.js';

const json = (body: unknown, status = '200', headers: Record<string, string> = {}): Answer => ({ status, headers, kind: 'json', body });

describe('compare', () => {
  it('types each difference and collapses array indexes', () => {
    const a = json({ id: 1, name: 'a', tags: ['x'], items: [{ p: 1 }, { p: 2 }], meta: { v: 1 }, gone: true });
    const b = json({ id: '1', name: 'b', tags: ['x', 'y'], items: [{ p: 1 }, { p: 3 }], meta: { v: 1, extra: 2 } }, '500', { 'x-new': '1' });
    expect(compare(a, b)).toEqual([
      { path: 'status', kind: 'value changed' },
      { path: 'header.x-new', kind: 'extra' },
      { path: 'body.id', kind: 'type changed' },
      { path: 'body.name', kind: 'value changed' },
      { path: 'body.tags', kind: 'array length' },
      { path: 'body.items[].p', kind: 'value changed' },
      { path: 'body.meta.extra', kind: 'extra' },
      { path: 'body.gone', kind: 'missing' },
    ]);
  });

  it('the same elements in another order: `order`, or equal with unorderedArrays', () => {
    const a = json({ list: [{ k: 1 }, { k: 2 }, { k: 3 }] });
    const b = json({ list: [{ k: 3 }, { k: 1 }, { k: 2 }] });
    expect(compare(a, b)).toEqual([{ path: 'body.list', kind: 'order' }]);
    expect(compare(a, b, { unorderedArrays: true })).toEqual([]);
    // Unordered, elements are paired by their sorted form: 1-1, 2-3, 3-9.
    expect(compare(a, json({ list: [{ k: 3 }, { k: 1 }, { k: 9 }] }), { unorderedArrays: true })).toEqual([
      { path: 'body.list[].k', kind: 'value changed' }, { path: 'body.list[].k', kind: 'value changed' }]);
  });

  it('ignore rules leave a field and what is under it out; volatile headers are not compared by default', () => {
    const a = json({ meta: { requestId: 'r1', at: 1 }, items: [{ id: 'x', v: 1 }] }, '200', { date: 'Mon', 'x-a': '1' });
    const b = json({ meta: { requestId: 'r2', at: 2 }, items: [{ id: 'y', v: 1 }] }, '200', { date: 'Tue', 'x-a': '2' });
    expect(compare(a, b, { ignore: [ignoreRule('json:$.meta'), ignoreRule('json:$.items[*].id'), ignoreRule('header:X-A')] })).toEqual([]);
    expect(compare(a, b, { ignore: [ignoreRule('json:$.*.requestId')] }).map((d) => d.path)).toEqual(['header.x-a', 'body.meta.at', 'body.items[].id']);
    expect(() => ignoreRule('regex:.*')).toThrow(/^unknown --ignore rule "regex:\.\*"/);
  });

  it('bodies by their structure: JSON, form fields, text, bytes; a body that is not the JSON it claims is text, and says so', () => {
    expect(parseBody('application/json', Buffer.from('{"a":1}'))).toEqual({ kind: 'json', body: { a: 1 } });
    expect(parseBody('application/x-www-form-urlencoded', Buffer.from('a=1&b=2&a=3'))).toEqual({ kind: 'form', body: { a: ['1', '3'], b: ['2'] } });
    expect(parseBody('text/plain', Buffer.from('hi'))).toEqual({ kind: 'text', body: 'hi' });
    expect(parseBody('application/octet-stream', Buffer.from([0xff, 0x00, 0xfe]))).toMatchObject({ kind: 'bytes' });
    expect(parseBody('application/json', Buffer.from('<html>'))).toMatchObject({ kind: 'text', body: '<html>', bodyError: expect.stringMatching(/^not JSON although declared so/) });
  });
});

// An application's object handles: private ones retired at logout, new handles for them after,
// and nothing kept for objects that are gone.
import { describe, expect, it } from 'vitest';
import { ObjectHandles } from '../../src/token/object-handles.js';

describe('ObjectHandles', () => {
  it('gives the device ids until a logout; then the private ones name nothing and get new handles', () => {
    const handles = new ObjectHandles();
    expect(handles.toApplication(7, true)).toBe(7);
    expect(handles.toApplication(8, false)).toBe(8);
    handles.retirePrivate();
    expect(handles.toDevice(7)).toBe(0);
    expect(handles.toDevice(8)).toBe(8);
    const alias = handles.toApplication(7, true);
    expect(alias).toBeGreaterThanOrEqual(0xc0000000);
    expect(handles.toApplication(7, true)).toBe(alias);
    expect(handles.toDevice(alias)).toBe(7);
    handles.retirePrivate();
    expect(handles.toDevice(alias)).toBe(alias); // names no object: no device id is that high
    const next = handles.toApplication(7, true);
    expect(next).not.toBe(alias);
    expect(handles.toDevice(next)).toBe(7);
  });

  it('keeps nothing for an object that is gone (ids are never given twice)', () => {
    const handles = new ObjectHandles();
    for (let id = 1; id <= 1000; id++) handles.toApplication(id, true);
    handles.retirePrivate();
    const alias = handles.toApplication(5, true);
    for (let id = 1; id <= 1000; id++) handles.forget(id);
    expect(handles.toDevice(alias)).toBe(alias);
    const kept = handles as unknown as { retired: Set<number>; givenPrivate: Set<number>; aliasOf: Map<number, number>; targetOf: Map<number, number> };
    expect([kept.retired.size, kept.givenPrivate.size, kept.aliasOf.size, kept.targetOf.size]).toEqual([0, 0, 0, 0]);
  });
});

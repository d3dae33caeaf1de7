// A partition's objects by handle, indexed by the attributes searches name most: CKA_CLASS,
// CKA_LABEL and CKA_ID. C_FindObjectsInit with one of them in its template looks at the
// objects that have that value instead of every object of the partition (10,000 objects: a
// label or an id is a map lookup, a class a fraction of the table). The index follows every
// set, delete and clear; an object's attributes are not changed in place once it is in the
// table (writeAttributes makes a new HsmObject and sets it).

import type { AttributeValue } from '../pkcs11/attributes.js';
import { CKA } from '../pkcs11/constants.js';
import type { HsmObject } from './object.js';

/** The attributes indexed, in the order a search prefers them (the most selective first). */
const INDEXED = [CKA.LABEL, CKA.ID, CKA.CLASS] as const;

function indexKey(type: number, value: AttributeValue | undefined): string | null {
  if (Buffer.isBuffer(value)) return `${type}:b:${value.toString('latin1')}`;
  if (typeof value === 'number') return `${type}:n:${value}`;
  return null;
}

export class ObjectTable extends Map<number, HsmObject> {
  private readonly index = new Map<string, Set<number>>();

  override set(handle: number, object: HsmObject): this {
    const previous = super.get(handle);
    if (previous !== undefined) this.unindex(previous);
    super.set(handle, object);
    // Map's constructor calls set before the index field exists; the table is always made empty.
    if (this.index !== undefined) {
      for (const type of INDEXED) {
        const key = indexKey(type, object.attributes.get(type));
        if (key === null) continue;
        let handles = this.index.get(key);
        if (handles === undefined) this.index.set(key, handles = new Set());
        handles.add(handle);
      }
    }
    return this;
  }

  override delete(handle: number): boolean {
    const object = super.get(handle);
    if (object === undefined) return false;
    this.unindex(object);
    return super.delete(handle);
  }

  override clear(): void {
    this.index.clear();
    super.clear();
  }

  private unindex(object: HsmObject): void {
    for (const type of INDEXED) {
      const key = indexKey(type, object.attributes.get(type));
      if (key === null) continue;
      const handles = this.index.get(key);
      handles?.delete(object.handle);
      if (handles?.size === 0) this.index.delete(key);
    }
  }

  /**
   * The objects that can match a template: those having its label, id or class (the first of
   * those it names), or every object when it names none. The caller still matches each.
   */
  candidates(template: ReadonlyMap<number, AttributeValue>): Iterable<HsmObject> {
    for (const type of INDEXED) {
      const wanted = template.get(type);
      if (wanted === undefined) continue;
      const key = indexKey(type, wanted);
      // A value of another shape (a boolean class) cannot equal a stored one: nothing matches.
      if (key === null) return [];
      const handles = this.index.get(key);
      if (handles === undefined) return [];
      const objects: HsmObject[] = [];
      for (const handle of handles) objects.push(super.get(handle)!);
      return objects;
    }
    return this.values();
  }
}

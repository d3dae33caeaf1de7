// The software HSM's objects: creating, copying, destroying, reading and writing attributes,
// and finding them, with this token's attribute rules (templates.ts). Who may see and change an
// object is the token model's to decide before it calls here.

import { attributeEquals, templateMap, type AttributeValue, type Template } from '../pkcs11/attributes.js';
import { CKA, CKK, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { AttributeRead, ObjectFacts } from '../token/device.js';
import { checkCanSeal, materialOf, objectOf, secretAvailable, secretFor, type Call } from './call.js';
import { HsmObject } from './object.js';
import { privateComponents } from './key-encoding.js';
import { checkRsaKeySize } from './policy.js';
import { alwaysPresentDefault, checkChange, isPrivateComponent, objectFromTemplate, validAttributes, valueIsSecret, type NewObject } from './templates.js';

export function factsOf(object: HsmObject): ObjectFacts {
  return { handle: object.handle, token: object.isToken, private: object.isPrivate };
}

/** Whether the class makes a private object when the template does not say. */
export function privateByDefault(objectClass: number | undefined): boolean {
  return objectClass === CKO.PRIVATE_KEY || objectClass === CKO.SECRET_KEY;
}

/** Gives new objects handles and puts them in the partition; token objects are written in one transaction first. */
export async function install(call: Call, built: readonly NewObject[]): Promise<ObjectFacts[]> {
  const { vault, partition } = call;
  // Token objects' secrets need a login: judged before a handle is taken.
  for (const b of built) if (b.attributes.get(CKA.TOKEN) === true && b.secret !== null) checkCanSeal(call);
  const handles: number[] = [];
  for (let i = 0; i < built.length; i++) handles.push(await vault.newObjectHandle());
  const objects = built.map((b, i) => {
    const handle = handles[i]!;
    const token = b.attributes.get(CKA.TOKEN) === true;
    if (token) {
      if (b.secret !== null) checkCanSeal(call);
      const sealed = b.secret === null ? null : vault.sealSecret(partition, handle, b.secret);
      return new HsmObject(handle, partition.id, b.attributes, null, sealed, null);
    }
    return new HsmObject(handle, partition.id, b.attributes, b.secret, null, { session: call.session.id });
  });
  await vault.persist(partition, objects);
  for (const o of objects) partition.objects.set(o.handle, o);
  return objects.map(factsOf);
}

export async function createObject(call: Call, template: Template): Promise<ObjectFacts> {
  const map = templateMap(template);
  if (map.get(CKA.CLASS) === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS');
  const built = objectFromTemplate(map, call.role === 'so', (key) => call.vault.mechanisms.describeKey(key));
  checkRsaKeySize(call.partition.row.policy, built.attributes, CKR.ATTRIBUTE_VALUE_INVALID);
  return (await install(call, [built]))[0]!;
}

export async function destroyObject(call: Call, handle: number): Promise<void> {
  const object = objectOf(call, handle);
  if (object.attributes.get(CKA.DESTROYABLE) === false) throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'CKA_DESTROYABLE is false');
  await call.vault.unpersist(object);
  call.partition.objects.delete(handle);
  call.partition.dropUnsealed(handle);
}

type Read = { value: AttributeValue } | 'sensitive' | 'invalid';

const RSA_COMPONENTS: readonly number[] = [CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT];

/** One attribute as the caller may see it. */
function readAttribute(call: Call, object: HsmObject, type: number): Read {
  const objectClass = object.objectClass;
  const unreadable = object.flag(CKA.SENSITIVE) || object.attributes.get(CKA.EXTRACTABLE) === false;
  if (isPrivateComponent(objectClass, type)) {
    const keyType = object.keyType;
    const applies = keyType === CKK.RSA ? RSA_COMPONENTS.includes(type) : type === CKA.VALUE;
    if (!applies) return 'invalid';
    if (unreadable || !secretAvailable(call, object)) return 'sensitive';
    const value = privateComponents(keyType!, secretFor(call, object)).get(type);
    return value === undefined ? 'invalid' : { value };
  }
  if (type === CKA.VALUE && valueIsSecret(objectClass, object.isPrivate)) {
    if ((objectClass === CKO.SECRET_KEY && unreadable) || !secretAvailable(call, object)) return 'sensitive';
    return { value: secretFor(call, object) };
  }
  const value = object.attributes.get(type) ?? alwaysPresentDefault(objectClass, type);
  if (value !== undefined) return { value };
  // CKA_CHECK_VALUE of a secret key: computed from the value, for a caller who may open it.
  if (type === CKA.CHECK_VALUE && objectClass === CKO.SECRET_KEY) {
    if (!secretAvailable(call, object)) return 'sensitive';
    const computed = call.vault.mechanisms.describeKey(materialOf(call, object)).get(CKA.CHECK_VALUE);
    return computed === undefined ? 'invalid' : { value: computed };
  }
  return 'invalid';
}

export function readAttributes(call: Call, handle: number, types: readonly number[]): AttributeRead[] {
  const object = objectOf(call, handle);
  return types.map((type): AttributeRead => {
    const read = readAttribute(call, object, type);
    if (read === 'sensitive') return { rv: CKR.ATTRIBUTE_SENSITIVE };
    if (read === 'invalid') return { rv: CKR.ATTRIBUTE_TYPE_INVALID };
    // A copy: the object's own bytes (and unsealed secrets) are not handed out.
    return { value: Buffer.isBuffer(read.value) ? Buffer.from(read.value) : read.value };
  });
}

export async function writeAttributes(call: Call, handle: number, template: Template): Promise<ObjectFacts> {
  const object = objectOf(call, handle);
  const changes = templateMap(template);
  if (object.attributes.get(CKA.MODIFIABLE) === false) throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'CKA_MODIFIABLE is false');
  for (const type of changes.keys()) checkChange(object.attributes, type, call.role === 'so');

  const attributes = new Map(object.attributes);
  let secret = object.secret;
  let sealed = object.sealed;
  for (const [type, value] of changes) {
    if (type === CKA.VALUE && valueIsSecret(object.objectClass, object.isPrivate)) {
      if (object.isToken) {
        checkCanSeal(call);
        sealed = call.vault.sealSecret(call.partition, object.handle, value as Buffer);
      } else secret = value as Buffer;
    } else {
      attributes.set(type, value);
    }
  }
  const updated = new HsmObject(object.handle, object.partitionId, attributes, secret, sealed, object.owner);
  await call.vault.persist(call.partition, [updated]);
  call.partition.objects.set(handle, updated);
  if (updated.sealed !== object.sealed) call.partition.dropUnsealed(handle);
  return factsOf(updated);
}

/** Does the object have every attribute of the template, with equal values? Unreadable values never match. */
export function matches(call: Call, object: HsmObject, template: ReadonlyMap<number, AttributeValue>): boolean {
  for (const [type, wanted] of template) {
    if (!validAttributes(object.objectClass, object.keyType).has(type) && !object.attributes.has(type)) return false;
    let read: Read;
    try {
      read = readAttribute(call, object, type);
    } catch {
      return false;
    }
    if (typeof read === 'string' || !attributeEquals(read.value, wanted)) return false;
  }
  return true;
}

/** Every object of the partition matching the template, in handle order; the token model filters what the caller sees. */
export function find(call: Call, template: Template): ObjectFacts[] {
  let map: Map<number, AttributeValue> | null;
  try {
    map = templateMap(template);
  } catch (error) {
    // An attribute this token does not know, or a value of the wrong shape, matches no object.
    if (error instanceof Pkcs11Error && (error.rv === CKR.ATTRIBUTE_TYPE_INVALID || error.rv === CKR.ATTRIBUTE_VALUE_INVALID)) map = null;
    else throw error;
  }
  const found: ObjectFacts[] = [];
  if (map !== null) {
    for (const object of call.partition.objects.candidates(map)) {
      if (matches(call, object, map)) found.push(factsOf(object));
    }
  }
  return found.sort((a, b) => a.handle - b.handle);
}

/** What C_CopyObject may set besides what C_SetAttributeValue may change. */
const COPY_SETTABLE: readonly number[] = [CKA.TOKEN, CKA.PRIVATE, CKA.MODIFIABLE, CKA.DESTROYABLE];

const sameValue = (current: AttributeValue | undefined, value: AttributeValue) => current !== undefined && attributeEquals(current, value);

/** Changes PKCS#11 lets a copy make however the original is held: sensitive, or no longer extractable. */
function tightens(type: number, value: AttributeValue): boolean {
  return (type === CKA.SENSITIVE && value === true) || (type === CKA.EXTRACTABLE && value === false);
}

/** C_CopyObject: a new object with the original's attributes and value, changed by the template. */
export async function copyObject(call: Call, handle: number, template: Template): Promise<ObjectFacts> {
  const object = objectOf(call, handle);
  const changes = templateMap(template);
  if (object.attributes.get(CKA.COPYABLE) === false) throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'CKA_COPYABLE is false');
  const objectClass = object.objectClass;
  const attributes = new Map(object.attributes);
  let value = valueIsSecret(objectClass, object.isPrivate) || objectClass === CKO.PRIVATE_KEY
    ? (object.hasSecret ? secretFor(call, object) : null)
    : null;
  for (const [type, changed] of changes) {
    if (COPY_SETTABLE.includes(type)) {
      // Policy attributes may be tightened in a copy, never loosened.
      if ((type === CKA.MODIFIABLE || type === CKA.DESTROYABLE) && attributes.get(type) === false && changed === true) {
        throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY);
      }
    } else {
      checkChange(attributes, type, call.role === 'so');
      // An unmodifiable object's copy may only be tightened: otherwise a copy would turn on what
      // C_SetAttributeValue refuses (CKA_DECRYPT of a wrap-only key, then decrypting wrapped keys).
      if (object.attributes.get(CKA.MODIFIABLE) === false && !tightens(type, changed) && !sameValue(attributes.get(type), changed)) {
        throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'CKA_MODIFIABLE is false');
      }
    }
    if (type === CKA.VALUE && valueIsSecret(objectClass, object.isPrivate)) value = changed as Buffer;
    else attributes.set(type, changed);
  }
  const isPrivate = attributes.get(CKA.PRIVATE) === true;
  // A data object or certificate keeps its value in the clear part unless it is private.
  if (objectClass === CKO.DATA || objectClass === CKO.CERTIFICATE) {
    const current = valueIsSecret(objectClass, object.isPrivate) ? value : (attributes.get(CKA.VALUE) as Buffer | undefined) ?? null;
    if (valueIsSecret(objectClass, isPrivate)) {
      attributes.delete(CKA.VALUE);
      value = current ?? Buffer.alloc(0);
    } else {
      if (current !== null) attributes.set(CKA.VALUE, current);
      value = null;
    }
  }
  return (await install(call, [{ attributes, secret: value, material: null }]))[0]!;
}

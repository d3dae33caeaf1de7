// Object management calls: C_CreateObject, C_DestroyObject, C_GetAttributeValue,
// C_SetAttributeValue, C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal.

import { CKA, CKK, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { attributeEquals, attributeLength, templateMap, type AttributeValue, type Template } from './attributes.js';
import { checkCanSeal, checkWrite, isVisible, secretFor, visibleObject, type Call } from './access.js';
import { seesPrivateObjects } from './roles.js';
import { HsmObject } from './object.js';
import { privateComponents } from './key-encoding.js';
import { checkChange, isPrivateComponent, objectFromTemplate, validAttributes, valueIsSecret, type NewObject } from './templates.js';

export interface AttributeRequest {
  type: number;
  /** Caller's buffer size: undefined = any (in-process), null = length query (pValue NULL). */
  length?: number | null;
}

export interface AttributeResult {
  type: number;
  /** The value, when asked for and available. */
  value: AttributeValue | null;
  /** ulValueLen; null = CK_UNAVAILABLE_INFORMATION. */
  length: number | null;
}

/** C_GetAttributeValue's answer: per-attribute results and the call's return value. */
export interface AttributeReadout {
  rv: number;
  attributes: AttributeResult[];
}

/** Whether the class makes a private object when the template does not say. */
export function privateByDefault(objectClass: number | undefined): boolean {
  return objectClass === CKO.PRIVATE_KEY || objectClass === CKO.SECRET_KEY;
}

/** Gives new objects handles and puts them in the partition; token objects are written in one transaction first. */
export function install(call: Call, built: readonly NewObject[]): HsmObject[] {
  const { hsm, partition } = call;
  const objects = built.map((b) => {
    const handle = hsm.newObjectHandle();
    const token = b.attributes.get(CKA.TOKEN) === true;
    if (token) {
      if (b.secret !== null) checkCanSeal(call);
      const sealed = b.secret === null ? null : hsm.sealSecret(partition, handle, b.secret);
      return new HsmObject(handle, partition.id, b.attributes, null, sealed, null);
    }
    return new HsmObject(handle, partition.id, b.attributes, b.secret, null, { app: call.app.id, session: call.session.handle });
  });
  hsm.persist(partition, objects);
  for (const o of objects) partition.objects.set(o.handle, o);
  return objects;
}

export function createObject(call: Call, template: Template): number {
  const map = templateMap(template);
  const objectClass = map.get(CKA.CLASS) as number | undefined;
  if (objectClass === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS');
  const isPrivate = map.has(CKA.PRIVATE) ? map.get(CKA.PRIVATE) === true : privateByDefault(objectClass);
  checkWrite(call, map.get(CKA.TOKEN) === true, isPrivate);
  const built = objectFromTemplate(map, call.role === 'so', (key) => call.hsm.mechanisms.describeKey(key));
  return install(call, [built])[0]!.handle;
}

export function destroyObject(call: Call, handle: number): void {
  const object = visibleObject(call, handle);
  checkWrite(call, object.isToken, object.isPrivate);
  if (object.attributes.get(CKA.DESTROYABLE) === false) throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'CKA_DESTROYABLE is false');
  call.hsm.unpersist(object);
  call.partition.objects.delete(handle);
  call.partition.dropUnsealed(handle);
}

type Read = { value: AttributeValue } | 'sensitive' | 'invalid';

const RSA_COMPONENTS: readonly number[] = [CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT];

/** A stored secret this caller cannot open reads as sensitive rather than failing the whole call. */
function secretAvailable(call: Call, object: HsmObject): boolean {
  return object.secret !== null || seesPrivateObjects(call.role);
}

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
  const value = object.attributes.get(type);
  return value === undefined ? 'invalid' : { value };
}

export function getAttributeValue(call: Call, handle: number, requests: readonly AttributeRequest[]): AttributeReadout {
  const object = visibleObject(call, handle);
  let rv: number = CKR.OK;
  const fail = (code: number) => { if (rv === CKR.OK) rv = code; };
  const attributes = requests.map((request): AttributeResult => {
    const read = readAttribute(call, object, request.type);
    if (read === 'sensitive') { fail(CKR.ATTRIBUTE_SENSITIVE); return { type: request.type, value: null, length: null }; }
    if (read === 'invalid') { fail(CKR.ATTRIBUTE_TYPE_INVALID); return { type: request.type, value: null, length: null }; }
    const length = attributeLength(read.value);
    if (request.length === null) return { type: request.type, value: null, length };
    if (request.length !== undefined && request.length < length) {
      fail(CKR.BUFFER_TOO_SMALL);
      return { type: request.type, value: null, length: null };
    }
    // A copy: the object's own bytes (and unsealed secrets) are not handed out.
    return { type: request.type, value: Buffer.isBuffer(read.value) ? Buffer.from(read.value) : read.value, length };
  });
  return { rv, attributes };
}

export function setAttributeValue(call: Call, handle: number, template: Template): void {
  const object = visibleObject(call, handle);
  const changes = templateMap(template);
  checkWrite(call, object.isToken, object.isPrivate);
  if (object.attributes.get(CKA.MODIFIABLE) === false) throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'CKA_MODIFIABLE is false');
  for (const [type, value] of changes) checkChange(object.attributes, type, value, call.role === 'so');

  const attributes = new Map(object.attributes);
  let secret = object.secret;
  let sealed = object.sealed;
  for (const [type, value] of changes) {
    if (type === CKA.VALUE && valueIsSecret(object.objectClass, object.isPrivate)) {
      if (object.isToken) {
        checkCanSeal(call);
        sealed = call.hsm.sealSecret(call.partition, object.handle, value as Buffer);
      }
      else secret = value as Buffer;
    } else {
      attributes.set(type, value);
    }
  }
  const updated = new HsmObject(object.handle, object.partitionId, attributes, secret, sealed, object.owner);
  call.hsm.persist(call.partition, [updated]);
  call.partition.objects.set(handle, updated);
  if (updated.sealed !== object.sealed) call.partition.dropUnsealed(handle);
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

export function findObjectsInit(call: Call, template: Template): void {
  if (call.session.find !== null) throw new Pkcs11Error(CKR.OPERATION_ACTIVE);
  let map: Map<number, AttributeValue> | null;
  try {
    map = templateMap(template);
  } catch (error) {
    // An attribute this token does not know, or a value of the wrong shape, matches no object.
    if (error instanceof Pkcs11Error && (error.rv === CKR.ATTRIBUTE_TYPE_INVALID || error.rv === CKR.ATTRIBUTE_VALUE_INVALID)) map = null;
    else throw error;
  }
  const handles: number[] = [];
  if (map !== null) {
    for (const object of call.partition.objects.values()) {
      if (isVisible(call, object) && matches(call, object, map)) handles.push(object.handle);
    }
  }
  handles.sort((a, b) => a - b);
  call.session.find = { handles, position: 0 };
}

export function findObjects(call: Call, maxCount: number): number[] {
  const find = call.session.find;
  if (find === null) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
  if (!Number.isInteger(maxCount) || maxCount < 0) throw new Pkcs11Error(CKR.ARGUMENTS_BAD);
  const out: number[] = [];
  while (out.length < maxCount && find.position < find.handles.length) {
    const handle = find.handles[find.position++]!;
    const object = call.partition.objects.get(handle);
    if (object && isVisible(call, object)) out.push(handle);
  }
  return out;
}

export function findObjectsFinal(call: Call): void {
  if (call.session.find === null) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
  call.session.find = null;
}

/** What C_CopyObject may set besides what C_SetAttributeValue may change. */
const COPY_SETTABLE: readonly number[] = [CKA.TOKEN, CKA.PRIVATE, CKA.MODIFIABLE, CKA.DESTROYABLE];

/** C_CopyObject: a new object with the original's attributes and value, changed by the template. */
export function copyObject(call: Call, handle: number, template: Template): number {
  const object = visibleObject(call, handle);
  const changes = templateMap(template);
  if (call.role === 'cu') throw new Pkcs11Error(CKR.ACTION_PROHIBITED);
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
      checkChange(attributes, type, changed, call.role === 'so');
    }
    if (type === CKA.VALUE && valueIsSecret(objectClass, object.isPrivate)) value = changed as Buffer;
    else attributes.set(type, changed);
  }
  const isPrivate = attributes.get(CKA.PRIVATE) === true;
  checkWrite(call, attributes.get(CKA.TOKEN) === true, isPrivate);
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
  return install(call, [{ attributes, secret: value, material: null }])[0]!.handle;
}

// The software HSM's keys: C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey and
// C_DeriveKey with this token's template rules, on the mechanisms. The token model has checked
// the mechanism's flags, the caller's role and which keys it sees.

import { attributeEquals, templateMap, type Attribute, type Template } from '../pkcs11/attributes.js';
import { CKA, CKK, CKM, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import type { ObjectFacts } from '../token/device.js';
import { checkCanSeal, checkStillOpen, materialOf, objectOf, usableKey, type Call } from './call.js';
import { install, matches } from './objects.js';
import { checkRsaGeneration } from './policy.js';
import type { HsmObject } from './object.js';
import {
  checkGenerationTemplate, checkImportTemplate, generatedKey, generatedKeyType, importedKey, keyTemplateClass,
  type AttributeMap,
} from './templates.js';
import type { KeyPairRequest } from './mechanisms/contract.js';

/**
 * CKA_UNWRAP_TEMPLATE / CKA_DERIVE_TEMPLATE of the key used: its attributes are imposed on the
 * new key; the caller's template may repeat them but not contradict them.
 */
function imposeTemplate(map: AttributeMap, key: HsmObject, type: number): void {
  const imposed = key.attributes.get(type) as readonly Attribute[] | undefined;
  for (const attribute of imposed ?? []) {
    const given = map.get(attribute.type);
    if (given !== undefined && !attributeEquals(given, attribute.value)) {
      throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, `the key's template fixes 0x${attribute.type.toString(16)}`);
    }
    map.set(attribute.type, attribute.value);
  }
}

/**
 * A token key's value is sealed under the partition key, which only the caller's own login
 * opens: without one, a token secret or private key is refused before any work is done, even
 * with CKA_PRIVATE false (docs/hsm.md, "Key generation in a public session").
 */
function checkTokenKeyAllowed(call: Call, map: AttributeMap): void {
  if (map.get(CKA.TOKEN) === true) checkCanSeal(call);
}

export async function generateKey(call: Call, mechanism: Mechanism, template: Template): Promise<ObjectFacts> {
  const map = templateMap(template);
  checkTokenKeyAllowed(call, map);
  const keyType = generatedKeyType(mechanism.type, map);
  checkGenerationTemplate(map, CKO.SECRET_KEY, keyType, call.role === 'so');
  const valueLength = map.get(CKA.VALUE_LEN) as number | undefined;
  if (valueLength === undefined && (mechanism.type === CKM.AES_KEY_GEN || mechanism.type === CKM.GENERIC_SECRET_KEY_GEN)) {
    throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE_LEN');
  }
  const generated = await call.vault.mechanisms.generateKey(mechanism, { valueLength, keyType });
  checkStillOpen(call);
  const built = generatedKey(map, generated.key, generated.attributes, mechanism.type);
  return (await install(call, [built]))[0]!;
}

export async function generateKeyPair(call: Call, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template): Promise<[ObjectFacts, ObjectFacts]> {
  const pub = templateMap(publicTemplate);
  const priv = templateMap(privateTemplate);
  checkTokenKeyAllowed(call, priv);
  const keyType = generatedKeyType(mechanism.type, pub);
  checkGenerationTemplate(pub, CKO.PUBLIC_KEY, keyType, call.role === 'so');
  checkGenerationTemplate(priv, CKO.PRIVATE_KEY, keyType, call.role === 'so');
  const request: KeyPairRequest = {};
  if (keyType === CKK.RSA) {
    const bits = pub.get(CKA.MODULUS_BITS) as number | undefined;
    if (bits === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_MODULUS_BITS');
    checkRsaGeneration(call.partition.row.policy, bits);
    request.modulusBits = bits;
    const exponent = pub.get(CKA.PUBLIC_EXPONENT) as Buffer | undefined;
    if (exponent) request.publicExponent = exponent;
  } else {
    const params = (pub.get(CKA.EC_PARAMS) ?? priv.get(CKA.EC_PARAMS)) as Buffer | undefined;
    if (params === undefined && keyType === CKK.EC) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_EC_PARAMS');
    if (params) request.ecParams = params;
  }
  const generated = await call.vault.mechanisms.generateKeyPair(mechanism, request);
  checkStillOpen(call);
  const publicKey = generatedKey(pub, generated.publicKey, generated.publicAttributes, mechanism.type);
  const privateKey = generatedKey(priv, generated.privateKey, generated.privateAttributes, mechanism.type, generated.publicKey.der);
  // The private key carries the public parts too (its modulus, its curve), as PKCS#11 tokens do.
  const shared = keyType === CKK.RSA ? [CKA.MODULUS, CKA.PUBLIC_EXPONENT] : [CKA.EC_PARAMS];
  for (const type of shared) {
    const value = publicKey.attributes.get(type);
    if (value !== undefined && !privateKey.attributes.has(type)) privateKey.attributes.set(type, value);
  }
  const [p, q] = await install(call, [publicKey, privateKey]);
  return [p!, q!];
}

export async function wrapKey(call: Call, mechanism: Mechanism, wrappingHandle: number, keyHandle: number): Promise<Buffer> {
  const wrapping = usableKey(call, wrappingHandle, CKA.WRAP, mechanism.type, CKR.WRAPPING_KEY_HANDLE_INVALID);
  const key = objectOf(call, keyHandle, CKR.KEY_HANDLE_INVALID);
  if (!key.isKey) throw new Pkcs11Error(CKR.KEY_HANDLE_INVALID);
  if (key.objectClass !== CKO.PUBLIC_KEY && key.attributes.get(CKA.EXTRACTABLE) !== true) throw new Pkcs11Error(CKR.KEY_UNEXTRACTABLE);
  if (key.flag(CKA.WRAP_WITH_TRUSTED) && !wrapping.flag(CKA.TRUSTED)) throw new Pkcs11Error(CKR.KEY_NOT_WRAPPABLE);
  // CKA_WRAP_TEMPLATE of the wrapping key: only keys matching it may be wrapped with it.
  const allowed = wrapping.attributes.get(CKA.WRAP_TEMPLATE) as readonly Attribute[] | undefined;
  if (allowed && allowed.length > 0 && !matches(call, key, new Map(allowed.map((a) => [a.type, a.value])))) {
    throw new Pkcs11Error(CKR.KEY_NOT_WRAPPABLE, 'the key does not match the wrapping key\'s CKA_WRAP_TEMPLATE');
  }
  return call.vault.mechanisms.wrapKey(mechanism, materialOf(call, wrapping), materialOf(call, key));
}

export async function unwrapKey(call: Call, mechanism: Mechanism, unwrappingHandle: number, wrapped: Buffer, template: Template): Promise<ObjectFacts> {
  const unwrapping = usableKey(call, unwrappingHandle, CKA.UNWRAP, mechanism.type, CKR.UNWRAPPING_KEY_HANDLE_INVALID);
  const map = templateMap(template);
  imposeTemplate(map, unwrapping, CKA.UNWRAP_TEMPLATE);
  checkTokenKeyAllowed(call, map);
  const { objectClass, keyType } = keyTemplateClass(map, null);
  const valueLength = checkImportTemplate(map, objectClass, keyType, call.role === 'so');
  const material = await call.vault.mechanisms.unwrapKey(mechanism, materialOf(call, unwrapping), wrapped, objectClass, keyType, valueLength || undefined);
  checkStillOpen(call);
  const built = importedKey(map, material, call.vault.mechanisms.describeKey(material), null);
  return (await install(call, [built]))[0]!;
}

export async function deriveKey(call: Call, mechanism: Mechanism, baseHandle: number, template: Template): Promise<ObjectFacts> {
  const base = usableKey(call, baseHandle, CKA.DERIVE, mechanism.type);
  const map = templateMap(template);
  imposeTemplate(map, base, CKA.DERIVE_TEMPLATE);
  checkTokenKeyAllowed(call, map);
  const { objectClass, keyType } = keyTemplateClass(map, CKO.SECRET_KEY);
  if (objectClass !== CKO.SECRET_KEY) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, 'derivation makes secret keys');
  const valueLength = checkImportTemplate(map, objectClass, keyType, call.role === 'so');
  const material = await call.vault.mechanisms.deriveKey(mechanism, materialOf(call, base), keyType, valueLength);
  checkStillOpen(call);
  const built = importedKey(map, material, call.vault.mechanisms.describeKey(material), base.attributes);
  return (await install(call, [built]))[0]!;
}

// A PKCS#11 mechanism with its parameter decoded into a typed value. The p11-kit codec
// produces these from the wire; the HSM's mechanisms consume them.

export interface RsaPkcsPssParams {
  kind: 'pss';
  /** CKM_SHA256 ... */
  hashAlg: number;
  /** CKG_MGF1_SHA256 ... */
  mgf: number;
  saltLength: number;
}

export interface RsaPkcsOaepParams {
  kind: 'oaep';
  hashAlg: number;
  mgf: number;
  /** CKZ_DATA_SPECIFIED or 0 */
  source: number;
  sourceData: Buffer | null;
}

export interface GcmParams {
  kind: 'gcm';
  iv: Buffer;
  aad: Buffer;
  tagBits: number;
}

export interface CtrParams {
  kind: 'ctr';
  counterBits: number;
  /** 16-byte initial counter block */
  counterBlock: Buffer;
}

export interface Ecdh1DeriveParams {
  kind: 'ecdh1';
  /** CKD_NULL, CKD_SHA256_KDF ... */
  kdf: number;
  sharedData: Buffer | null;
  /** Peer public key: an uncompressed EC point (or raw X25519 key). */
  publicData: Buffer;
}

/** Parameters that are just bytes: an IV for CBC, nothing at all (null), or unknown bytes. */
export interface ByteParams {
  kind: 'bytes';
  value: Buffer;
}

export type MechanismParameter = RsaPkcsPssParams | RsaPkcsOaepParams | GcmParams | CtrParams | Ecdh1DeriveParams | ByteParams;

export interface Mechanism {
  /** CKM_ value */
  type: number;
  parameter: MechanismParameter | null;
}

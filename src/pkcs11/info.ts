// CK_INFO, CK_SLOT_INFO, CK_TOKEN_INFO, CK_MECHANISM_INFO and CK_SESSION_INFO, once: spelled as
// the p11-kit codec names their fields (src/protocol/p11kit/calls.ts), used as they are by the
// devices, the token model, the processor and the client. Strings are unpadded (the codec pads).

export interface Version {
  major: number;
  minor: number;
}

/** CK_UNAVAILABLE_INFORMATION (~0UL) as a CK_ULONG field carries it through the codec. */
export const UNAVAILABLE_INFORMATION = -1;

export interface LibraryInfo {
  cryptokiVersion: Version;
  manufacturerId: string;
  flags: number;
  libraryDescription: string;
  libraryVersion: Version;
}

export interface SlotInfo {
  slotDescription: string;
  manufacturerId: string;
  flags: number;
  hardwareVersion: Version;
  firmwareVersion: Version;
}

export interface TokenInfo {
  label: string;
  manufacturerId: string;
  model: string;
  serialNumber: string;
  flags: number;
  maxSessionCount: number;
  sessionCount: number;
  maxRwSessionCount: number;
  rwSessionCount: number;
  maxPinLen: number;
  minPinLen: number;
  /** UNAVAILABLE_INFORMATION when the token does not say. */
  totalPublicMemory: number;
  freePublicMemory: number;
  totalPrivateMemory: number;
  freePrivateMemory: number;
  hardwareVersion: Version;
  firmwareVersion: Version;
  /** YYYYMMDDhhmmss00 */
  utcTime: string;
}

export interface MechanismInfo {
  minKeySize: number;
  maxKeySize: number;
  /** CKF_SIGN | CKF_VERIFY ... */
  flags: number;
}

export interface SessionInfo {
  slotId: number;
  state: number;
  flags: number;
  deviceError: number;
}

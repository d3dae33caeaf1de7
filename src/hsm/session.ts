// A session of the software HSM: on one partition, read-only or read-write, holding the
// streams of its active operations. Session objects made in it die with it.

import type { DeviceSession, OperationKind } from '../token/device.js';
import type { StreamingOperation } from './mechanisms/contract.js';
import type { Partition, PartitionSession } from './partition.js';

export class SoftwareSession implements DeviceSession, PartitionSession {
  readonly operations = new Map<OperationKind, StreamingOperation<unknown, unknown>>();
  closed = false;

  constructor(readonly id: number, readonly partition: Partition, readonly readWrite: boolean) {}

  get slot(): number {
    return this.partition.slotId;
  }
}

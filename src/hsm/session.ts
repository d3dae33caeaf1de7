// A session of the software HSM: on one partition, read-only or read-write, holding the
// streams of its active operations. Session objects made in it die with it.

import type { DeviceSession, OperationKind } from '../token/device.js';
import type { StreamingOperation } from './mechanisms/contract.js';
import type { Partition, PartitionSession } from './partition.js';

/** A session's active operations; an operation that leaves (finished, failed, replaced, its session closed) gives back what it holds. */
export class OperationSlots {
  private readonly slots = new Map<OperationKind, StreamingOperation<unknown, unknown>>();

  get(kind: OperationKind): StreamingOperation<unknown, unknown> | undefined {
    return this.slots.get(kind);
  }

  set(kind: OperationKind, operation: StreamingOperation<unknown, unknown>): void {
    this.delete(kind);
    this.slots.set(kind, operation);
  }

  delete(kind: OperationKind): void {
    const operation = this.slots.get(kind);
    if (operation === undefined) return;
    this.slots.delete(kind);
    operation.dispose?.();
  }

  clear(): void {
    for (const kind of [...this.slots.keys()]) this.delete(kind);
  }
}

export class SoftwareSession implements DeviceSession, PartitionSession {
  readonly operations = new OperationSlots();
  closed = false;

  constructor(readonly id: number, readonly partition: Partition, readonly readWrite: boolean) {}

  get slot(): number {
    return this.partition.slotId;
  }

  end(): void {
    this.closed = true;
    this.operations.clear();
  }
}

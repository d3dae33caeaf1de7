// The daemon's readiness, from what it runs: the processor's store (through its own admin
// command, partition.list, when it has one) and whether the data path still serves.
import { health, type HealthProbe } from '../metrics/health.js';
import type { CommandProcessorModule } from '../processor/contract.js';

export function healthProbe(processor: CommandProcessorModule, serving: () => boolean): HealthProbe {
  return async () => {
    const listening = serving();
    let storeOpen = true;
    const list = processor.cp_admin_commands?.().get('partition.list');
    if (list) {
      try {
        await list({});
      } catch {
        storeOpen = false;
      }
    }
    return health({ storeOpen: listening && storeOpen, listening, processorLoaded: listening });
  };
}

import { NtlsError } from '../errors/ntls-error.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { CommandProcessorModule, ProcessorContext, ProcessorName } from './contract.js';
import { DATAPATH_CONTRACT_VERSION, ENTRY_POINTS, GUIDE_ENTRY_POINTS } from './contract.js';
import { createPkcs11Processor } from './pkcs11/processor.js';

/** The processor could not be loaded; the guide's lines have been written already. */
export class ProcessorLoadError extends NtlsError {
  declare readonly code: 'RC_GENERAL_ERROR' | 'RC_FUNCTION_NOT_SUPPORTED';
  constructor(code: 'RC_GENERAL_ERROR' | 'RC_FUNCTION_NOT_SUPPORTED', detail: string, options: { cause?: unknown } = {}) {
    super(code, detail, options);
  }
}

export interface LoadedProcessor {
  module: CommandProcessorModule;
  name: ProcessorName;
  workers: number;
}

async function importModule(path: string, logger: Logger): Promise<CommandProcessorModule> {
  const file = resolve(path);
  if (!existsSync(file)) {
    logger.log(Catalogue.processorLibraryMissing);
    logger.log(Catalogue.processorModuleNotFound, { module: path });
    throw new ProcessorLoadError('RC_GENERAL_ERROR', `command processor module ${path} not found`);
  }
  let imported: Record<string, unknown>;
  try {
    imported = await import(pathToFileURL(file).href) as Record<string, unknown>;
  } catch (error) {
    logger.log(Catalogue.processorModuleNotFound, { module: path });
    throw new ProcessorLoadError('RC_GENERAL_ERROR', `command processor module ${path} could not be loaded: ${(error as Error).message}`);
  }
  const label = path;
  for (const entry of GUIDE_ENTRY_POINTS) {
    if (typeof imported[entry] !== 'function') {
      logger.log(Catalogue.processorEntryPointMissing, { entryPoint: entry, module: label });
      throw new ProcessorLoadError('RC_FUNCTION_NOT_SUPPORTED', `${entry} missing from command processor ${path}`);
    }
  }
  return imported as unknown as CommandProcessorModule;
}

/** The module's name and version as it gives them; what it gives that is not one, named by its path. */
function processorName(given: unknown, modulePath: string | null): ProcessorName {
  const fields = typeof given === 'object' && given !== null ? given as Partial<Record<keyof ProcessorName, unknown>> : {};
  const name = typeof fields.name === 'string' ? fields.name : typeof given === 'string' ? given : modulePath ?? 'command processor';
  const version = typeof fields.version === 'string' || typeof fields.version === 'number' ? String(fields.version) : 'unknown';
  return { name, version };
}

/**
 * Loads, checks, initialises and configures the command processor, writing the guide's lines
 * for each outcome. Throws ProcessorLoadError when ntls must not start.
 */
export async function loadProcessor(modulePath: string | null, context: ProcessorContext): Promise<LoadedProcessor> {
  const { logger } = context;
  let module: CommandProcessorModule;
  if (modulePath === null) {
    logger.log(Catalogue.defaultProcessorUsed);
    module = createPkcs11Processor();
  } else {
    module = await importModule(modulePath, logger);
  }
  const name = processorName(module.cp_get_processor_name_p(), modulePath);
  const missing = ENTRY_POINTS.find((entry) => typeof module[entry] !== 'function');
  if (missing) {
    // Not an entry point the guide names: the module fails to initialise, in the guide's words.
    logger.log(Catalogue.processorInitFailed, { module: name.name, version: name.version });
    throw new ProcessorLoadError('RC_FUNCTION_NOT_SUPPORTED', `${missing} missing from command processor ${modulePath}`);
  }
  const given: unknown = module.cp_get_supported_versions();
  const supported = Array.isArray(given) ? given.map(String) : [];
  if (!supported.includes(DATAPATH_CONTRACT_VERSION)) {
    logger.log(Catalogue.processorIncompatible, { module: name.name, version: name.version });
    throw new ProcessorLoadError('RC_FUNCTION_NOT_SUPPORTED', `command processor "${name.name}" supports contract versions ${supported.join(', ') || 'none'}, the data path speaks ${DATAPATH_CONTRACT_VERSION}`);
  }
  try {
    await module.cp_initialize_p(context);
  } catch (error) {
    logger.log(Catalogue.processorInitFailedForDatapath, { module: name.name, version: name.version, datapathVersion: DATAPATH_CONTRACT_VERSION });
    throw new ProcessorLoadError('RC_GENERAL_ERROR', `command processor "${name.name}" failed to initialise: ${(error as Error).message}`, { cause: error });
  }
  logger.log(Catalogue.processorModuleLoaded, { module: name.name, version: name.version });
  const { workers } = module.cp_configure();
  logger.log(Catalogue.processorWorkersConfigured, { workers });
  return { module, name, workers };
}

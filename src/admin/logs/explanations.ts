// What each group of the guide's messages means and its likely root cause, in the guide's own
// sentences (shared/seed/ntls-log-reference.txt, the paragraph after each group of example
// lines, and its footnotes). Keyed by section and heading: the guide uses one heading
// ("Client Credentials Cannot be Verified") for three groups, two of them in the same section,
// so each group also lists the catalogue entries it explains. A message the guide shows under
// two headings ("Client request header malformed") is in both groups; its catalogue heading
// names the first. test/admin/logs/explanations.test.ts holds every sentence against the guide.
import type { MessageId } from '../../log/catalogue.js';
import type { Section } from '../../log/message.js';

export interface Explanation {
  section: Section;
  /** The guide's heading, as printed. */
  heading: string;
  /** Catalogue entries of this group. */
  ids: readonly MessageId[];
  /** The guide's paragraph, without its root-cause sentences. */
  meaning: string;
  /** The guide's "A possible root cause ..." sentences, or null where it names none. */
  rootCause: string | null;
  /** Footnotes of the group, for the entries they concern. */
  notes?: Partial<Record<MessageId, string>>;
}

/** The guide's opening sentence of each section: why its messages are expected or not. */
export const sectionIntroductions: Record<Section, string> = {
  'datapath-expected': 'The following log messages are normal and expected entries in the log files from the datapath engine of NTLS.',
  'datapath-unexpected': 'Under normal circumstances, you should not see any of these log messages. If you do so, please consult the user documentation for guidance on how to correct the problem.',
  'datapath-debug': 'Thales does not enable logging of debug messages for NTLS. If in future Thales does enable this level of log messages, the messages above show examples of what you might find in the log files.',
  'processor-expected': 'The following log messages are normal and expected entries in the log files from the Luna SA command processor of NTLS.',
  'processor-unexpected': 'Under normal circumstances, you should not see any of these log messages. If you do so, please consult the user documentation to seek guidance on how to correct the problem.',
  'processor-debug': 'Thales does not enable logging of debug messages for NTLS. If in future Thales does enable this level of log messages, the messages above show examples of what you might find in the log files.',
  // ntls-client's own HA lines (src/client/ha-log.ts): the guide has no such section, so no
  // sentence of it is quoted here.
  'client-expected': '',
  'client-unexpected': '',
};

/** The guide's titles of its sections. */
export const sectionTitles: Record<Section, string> = {
  'datapath-expected': 'Datapath: Expected Log Messages',
  'datapath-unexpected': 'Datapath: Unexpected Log Messages',
  'datapath-debug': 'Datapath Debug Messages',
  'processor-expected': 'Luna Network HSM 7 Command Processor: Expected Log Messages',
  'processor-unexpected': 'Luna Network HSM 7 Command Processor: Unexpected Log Messages',
  'processor-debug': 'Luna Network HSM 7 Command Processor Debug Messages',
  'client-expected': 'ntls-client: HA group events',
  'client-unexpected': 'ntls-client: HA group failures',
};

const OLDER = '“NTLS” in older implementations.';

export const explanations: readonly Explanation[] = [
  // Datapath: expected
  {
    section: 'datapath-expected', heading: 'Startup',
    ids: ['startingUp', 'enginePreloaded', 'engineCtrlSoPath', 'engineCtrlId', 'engineCtrlLoad', 'engineEnabledAllOps', 'hsmCryptoSupport',
      'hsmCryptoSupportOlder', 'processorModuleLoaded', 'workersConfigured', 'onlineAndOperational', 'tcpKeepAliveConfigured', 'cipherListSet'],
    meaning: 'The first message indicates that NTLS is starting up. The next five messages trace the progress of the SSL start up sequence. The remaining messages show the progress through to a successful startup.',
    rootCause: null,
    notes: {
      hsmCryptoSupport: 'Or “disabled” or “NOT enabled” if the keys-in-hardware option is enabled but the SSL engine failed to load (“luna_engine_load: failed to ENGINE_set_default for ALL ops”).',
      hsmCryptoSupportOlder: '"NTLS” in older implementations',
    },
  },
  {
    section: 'datapath-expected', heading: 'Failed to Enable SSL Engine for All Operations', ids: ['engineSetDefaultAllFailed'],
    meaning: 'This message indicates that the SSL engine was unable to initialize properly.', rootCause: null,
  },
  {
    section: 'datapath-expected', heading: 'Client Connections',
    ids: ['incomingConnection', 'connectionAccepted', 'handshakeResult', 'clientAuthenticated', 'connectionTerminating', 'clientDisconnected',
      'receiveTimerTerminate', 'receiveTimerExpired'],
    meaning: 'These messages indicate connect establishment and termination by NTLS. You should find pairs of connection accepted and disconnected messages in the logs. The last two messages result when a client connects but is inactive for a period configured for NTLS.',
    rootCause: null,
    notes: {
      receiveTimerTerminate: 'This message results if the timeout is for a scheduled cleanup.',
      receiveTimerExpired: 'This message results if the timeout is not for a scheduled cleanup.',
    },
  },
  {
    section: 'datapath-expected', heading: 'Client Credentials Cannot be Verified', ids: ['clientCredentialsRejected'],
    meaning: 'This message indicates that the client connection request could not be completed.',
    rootCause: 'A possible root cause is that the client’s certificate is invalid (e.g., has a wrong IP address or hostname).',
  },
  {
    section: 'datapath-expected', heading: 'Cache Monitor',
    ids: ['verifyLocationMonitorStarted', 'verifyLocationCertRemoved', 'verifyLocationMonitorTerminated'],
    meaning: 'These messages indicate that NTLS has started to monitor client certificates registered with the process.', rootCause: null,
  },
  {
    section: 'datapath-expected', heading: 'Connection Instance Added and Removed',
    ids: ['connectionInstanceRemoved', 'connectionInstanceAdded', 'connectionInstanceDisconnected'],
    meaning: 'These messages indicate NTLS’s action to add and remove connection instances.', rootCause: null,
  },
  {
    section: 'datapath-expected', heading: 'Client Credentials Cannot be Verified', ids: ['clientCredentialsMissing'],
    meaning: 'This message indicates that an application connected to NTLS but did not provide the SSL credentials to complete authentication.',
    rootCause: null,
  },
  {
    section: 'datapath-expected', heading: 'Handshake Failed', ids: ['secureChannelFailed'],
    meaning: 'This message indicates that an application attempted to connect with SSL credentials that did not conform to the algorithms and/or cryptographic strength expected by NTLS.',
    rootCause: null,
  },
  {
    section: 'datapath-expected', heading: 'Unable to Initialize Server Socket',
    ids: ['listeningPortBindFailed', 'serverSocketInitFailed', 'serverSocketInitFailedOlder', 'initializationFailed'],
    meaning: 'These messages indicate that NTLS was unable to initialize the server socket.',
    rootCause: 'A possible root cause is that the network interface is not properly configured.',
    notes: { serverSocketInitFailedOlder: OLDER },
  },
  {
    section: 'datapath-expected', heading: 'Connected to Server', ids: ['connectedToServer'],
    meaning: 'This message indicates that NTLS has successfully established an outgoing connection with a peer or remote server.', rootCause: null,
  },
  {
    section: 'datapath-expected', heading: 'Shutting Down',
    ids: ['shuttingDown', 'initiatingDispatchTermination', 'dispatchingTerminated', 'terminating', 'processorShutDown', 'terminated'],
    meaning: 'These messages show the progression of steps as NTLS terminates.', rootCause: null,
  },
  // Datapath: unexpected
  {
    section: 'datapath-unexpected', heading: 'NTLS Terminating',
    ids: ['terminatingCritical', 'daemonStartFailed', 'applicationInitFailed', 'serverCreateFailed'],
    meaning: 'These messages indicate that NTLS failed at startup.',
    rootCause: 'Possible root causes for the first message are a failure to create internal data structures needed by NTLS or a failure to generate the private key and certificate needed by NTLS.',
  },
  {
    section: 'datapath-unexpected', heading: 'Failed to Load SSL Engine', ids: ['engineByIdFailed'],
    meaning: 'This message indicates that OpenSSL was unable to load the specified engine.',
    rootCause: 'A possible root cause is the wrong engine identifier specified in the OpenSSL configuration file.',
  },
  {
    section: 'datapath-unexpected', heading: 'Configured for RSA Operations', ids: ['engineEnabledRsaOps'],
    meaning: 'This message indicates that the SSL engine used by NTLS is configured only for RSA operations.', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Failed to Pre-Load SSL Engine', ids: ['enginePreloadFailed'],
    meaning: 'This message indicates that the SSL engine was unable to preload.',
    rootCause: 'A possible root cause is the wrong engine identifier configured on the Luna appliance.',
  },
  {
    section: 'datapath-unexpected', heading: 'Failed to Enable SSL Engine for RSA Operations', ids: ['engineSetDefaultRsaFailed'],
    meaning: 'This message indicates that the SSL engine was unable to initialize properly for RSA operations.', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Failed to Initialize',
    ids: ['processorLibraryMissing', 'processorModuleNotFound', 'processorEntryPointMissing', 'processorInitFailedForDatapath',
      'processorInitFailedOlder', 'processorIncompatible', 'opensslLibraryInitFailed', 'opensslServerContextFailed',
      'applicationSpecificInitFailed', 'dispatcherInitFailed', 'configClientCertFileInvalid', 'configClientKeyFileInvalid',
      'configSslConfigFileInvalid', 'serverKeyCertCreateFailed'],
    meaning: 'These messages indicate a failure of the datapath component to initialize itself at NTLS startup.', rootCause: null,
    notes: { processorInitFailedOlder: 'For older implementations.' },
  },
  {
    section: 'datapath-unexpected', heading: 'No Command Processor Module Configured', ids: ['defaultProcessorUsed'],
    meaning: 'This message indicates an error in how NTLS is configured.', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Fail to Accept Connections', ids: ['newConnectionFailed', 'acceptFailed'],
    meaning: 'These messages indicate an NTLS failure to establish the TCP/IP socket necessary to listen for and accept connections from clients.',
    rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Fail to Create Client Connection', ids: ['connectionInstanceCreateFailed', 'tcpAcceptFailed'],
    meaning: 'These messages indicate a failure to create a client connection on an incoming request.', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Cache Monitor Failed', ids: ['cacheMonitorInitFailed'],
    meaning: 'This message indicates that the thread spawned to monitor client certificates failed to initialize.', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Connection Instance Failures',
    ids: ['timerCreateFailed', 'sslObjectCreateFailed', 'requestHeaderMalformed', 'commandBufferAllocFailedInfo', 'forwardToProcessorFailed'],
    meaning: 'These messages indicate a failure of NTLS to add or remove a client connection instance.', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Non-Luna Client Connect Attempt', ids: ['nonLunaClient'],
    meaning: 'This message indicates that an application attempted to connect to the Luna appliance via NTLS but did not provide the proper SSL message exchange expected.',
    rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Command Process Unloaded', ids: ['processorModuleUnloaded'],
    meaning: 'This message indicates that NTLS unloaded its command processor module (a shared object library).', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'SSL Certificates Problems',
    ids: ['badSslHandleHostname', 'currentCertUnavailable', 'certTextUnavailable', 'invalidClientCertHostname', 'nativeSslCtxUnavailable',
      'cipherListError', 'configClientCertPathInvalid', 'loadVerifyLocationsFailed', 'loadVerifyLocationsSingleFailed',
      'configServerCertFileInvalid', 'serverCertLoadFailed', 'configServerKeyFileInvalid', 'serverKeyLoadFailed', 'serverKeyCheckFailed',
      'hostIpAddressUnavailable', 'hostPortUnavailable', 'contextCreateFailed', 'serverForAddressInitFailed',
      'configClientCertFilenameInvalid', 'clientCertLoadFailed', 'configClientKeyFilenameInvalid', 'clientKeyLoadFailed',
      'configServerCaFileInvalid', 'serverCaLoadFailed', 'contextUpdateFailed'],
    meaning: 'These messages indicate a failure of the underlying communication mechanism NTLS uses to exchange messages between a client application and the Luna appliance.',
    rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Client Authentication Failures',
    ids: ['identityWriteFailed', 'connectFailed', 'handshakeFailed', 'identifyResult', 'identityReadFailed', 'forwardDatalessFailed',
      'requestHeaderMalformed', 'commandBufferAllocFailed', 'commandBufferReadFailed', 'forwardToProcessorFailed', 'clientWriteFailed',
      'lastWriteBeforeReinitFailed', 'expectedCancelledOperation', 'reinitializingConnection', 'responseBufferUnavailable',
      'clientCertExpected', 'clientCertUnavailable', 'serverConnectedFailed'],
    meaning: 'These messages indicate a failure of NTLS to verify the client requesting to connect to the Luna appliance.', rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Port Monitoring Failures',
    ids: ['hostIpAddressUnavailable', 'hostPortUnavailable', 'socketLingerFailed', 'socketReuseFailed', 'datapathPortBindFailed',
      'socketNonBlockingFailed', 'portNotListening'],
    meaning: 'These messages indicate a failure of NTLS to set up the port upon which the process will listen for incoming connection requests.',
    rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'Could Not Initialize Command Processor',
    ids: ['processorInitFailed', 'processorCleanupInitFailed', 'applianceHandlerCreateFailed', 'applianceHandlerInitFailed',
      'serverForNtlsCreateFailed', 'threadPoolCreateFailed'],
    meaning: 'These messages indicate a failure to initialize the command processor, a shared library module within the Luna appliance.',
    rootCause: null,
  },
  {
    section: 'datapath-debug', heading: 'Datapath Debug Messages',
    ids: ['opensslVersion', 'unexpectedConnectResponse', 'unexpectedClientResponse', 'unexpectedHandshakeResponse', 'unexpectedReadResponse',
      'unexpectedWriteResponse'],
    meaning: 'Thales does not enable logging of debug messages for NTLS. If in future Thales does enable this level of log messages, the messages above show examples of what you might find in the log files. In the examples above, <state string> is one of the following set: [IDENTITY STATE | HANDSHAKE STATE | PROCESSING STATE | HEADER STATE | COMMAND STATE | CONNECTING STATE | IDENTIFYING STATE | OUT OF SERVICE STATE | REINITIALIZING STATE].',
    rootCause: null,
  },
  {
    section: 'datapath-unexpected', heading: 'NTLS Crash and Burn', ids: ['crashStackDumped', 'crashNoStackDump'],
    meaning: 'The first message indicates that NTLS terminated abnormally (on one of SIGSEGV, SIGILL or SIGBUS signals), generating a stack trace file in the process. An example stack trace file is: ntls_bt_2012-02-29_12:05:01 found in the logs directory. Forwarding this file to Thales product engineering may assist a developer to isolate the reason for the abnormal termination. The second message indicates an abnormal termination but with no resulting stack trace created.',
    rootCause: 'These messages indicate a programming error.',
  },
  // Command processor: expected
  {
    section: 'processor-expected', heading: 'Configured with Worker Threads', ids: ['processorWorkersConfigured'],
    meaning: 'This message indicates that NTLS has successfully started its command processor.', rootCause: null,
  },
  {
    section: 'processor-expected', heading: 'USB Backup and PKI Bundle Device',
    ids: ['usbTokenUndeployed', 'usbTokenRedeployed', 'usbTokenAdded', 'deployedTokenInserted', 'nonDeployedTokenInserted',
      'nonDeployedUnlabelledTokenInserted', 'deployedTokenEjected', 'nonDeployedTokenEjected', 'nonDeployedUnlabelledTokenEjected', 'pkiTokenFound'],
    meaning: 'These messages indicate actions associated with devices connected to the USB port on the Luna Network HSM 7 appliance. Luna Network HSM 7 supports secure backup from the internal HSM to a USB-attached backup device. Luna Network HSM 7 also supports a “PKI bundle” feature for root keys stored and accessed on a USB-attached device (e.g., Luna USB HSM 7). The examples above show “Backup1” for the label name of the USB-attached device but this label could be PKI bundle-centric (e.g., “RootCA1”) – the messages are common for both use cases.',
    rootCause: null,
  },
  {
    section: 'processor-expected', heading: 'Command Processor Instance Removed', ids: ['processorInstanceRemoved'],
    meaning: 'This message indicates that a client connection terminated and NTLS removed the command processor instance allocated for this client.',
    rootCause: null,
  },
  {
    section: 'processor-expected', heading: 'Shutdown', ids: ['processorShutDown'],
    meaning: 'This message indicates an orderly shutdown of the Luna Network HSM 7 command processor.', rootCause: null,
  },
  // Command processor: unexpected
  {
    section: 'processor-unexpected', heading: 'Keep-alive Timer Failures', ids: ['keepaliveTimerCreateFailed', 'keepaliveDisabled'],
    meaning: 'These messages indicate a failure to start the keep-alive timer that monitors for inactive client connections.', rootCause: null,
  },
  {
    section: 'processor-unexpected', heading: 'Startup and Operational Failures',
    ids: ['connectionResponseAllocFailed', 'terminationResponseAllocFailed', 'slotStateResponseAllocFailed', 'responseMessageAllocFailed',
      'keepaliveMessageAllocFailed', 'tokenInterfaceInitFailed', 'appIdMappingInitFailed', 'remotePedInitFailed', 'registrationDbInitFailed',
      'registrationDbPopulateFailed', 'registrationFlagsResetFailed', 'tokenManagerCreateFailed', 'vtokenManagerInitFailed',
      'versionNotSupported', 'appIdConnectionCountFailed', 'attachResponseBufferOutOfMemory', 'processorInstanceCreateFailed',
      'registrationObserverInvalid', 'registrationObserverOperationInvalid', 'commandResponseReturnFailed'],
    meaning: 'These messages indicate a failure of NTLS to start the component responsible for managing connection queues and for processing HSM-specific requests for service from clients.',
    rootCause: null,
  },
  {
    section: 'processor-unexpected', heading: 'Fail to Initialize Appliance Statistics', ids: ['statisticsInitFailed'],
    meaning: 'This message indicates a failure of the Luna Network HSM 7 command processor to initialize data structures necessary to compile operational statistics. NTLS continues to operate.',
    rootCause: null,
  },
  {
    section: 'processor-unexpected', heading: 'Client Credentials Cannot be Verified', ids: ['clientCredentialsUnverified'],
    meaning: 'This message indicates that the client credentials cannot be verified.',
    rootCause: 'A possible root cause is an inconsistent entry in the client certificate for IP address or host name.',
  },
  {
    section: 'processor-unexpected', heading: 'Client Terminating', ids: ['clientRequestedTermination'],
    meaning: 'This message indicates that the client is terminating under normal (i.e., graceful) circumstances.', rootCause: null,
  },
  {
    section: 'processor-unexpected', heading: 'Unsupported Command', ids: ['unsupportedCommand'],
    meaning: 'This message indicates that the command request received by NTLS is unexpected.',
    rootCause: 'A possible root cause is from an application that calls a PKCS#11 function that NTLS is not programmed to either accept or ignore.',
  },
  {
    section: 'processor-unexpected', heading: 'Failure to Retrieve Container List', ids: ['containerListFailed', 'systemContainersLoadFailed'],
    meaning: 'These messages indicate that NTLS was unable to retrieve from the internal HSM its representation of how cryptographic objects are segregated from one another.',
    rootCause: 'A possible root cause is a loss of communication between the internal HSM and its associated device driver.',
  },
  {
    section: 'processor-debug', heading: 'Luna Network HSM 7 Command Processor Debug Messages',
    ids: ['transientAppIdRemoved', 'openSession', 'openSessionAppIdNotPersistent', 'transientAppIdCreated', 'appIdMappingExists',
      'openSessionAppId', 'closeAllSessions', 'openAccess', 'persistentAppIdCreated', 'appIdMadePersistent', 'closingAccess',
      'closeAccessAppIdNotPersistent', 'appIdMappingRemoved', 'seedRandomBypassed', 'sessionClosed', 'allSessionsClosed',
      'allSessionsRemoved', 'sessionOpened', 'vtokenCreated', 'viperSlot', 'partitionsFound', 'tokenIndexLookup', 'tokenSerial',
      'tokenDirty', 'monitorSlotEntered', 'monitorSlotLeft', 'monitorConfigEntered', 'monitorConfigLeft'],
    meaning: 'Thales does not enable logging of debug messages for NTLS. If in future Thales does enable this level of log messages, the messages above show examples of what you might find in the log files. These messages are for developer testing and hence are undocumented.',
    rootCause: null,
  },
  {
    section: 'processor-unexpected', heading: 'Virtual Token Create and Add Failures', ids: ['vtokenAddFailed', 'vtokenStartFailed', 'vtokenInitFailed'],
    meaning: 'These messages indicate a failure to complete an intended operation on a virtual token within NTLS.', rootCause: null,
  },
];

export type Kind = 'expected' | 'unexpected' | 'debug';

/** Expected, unexpected or debug: the guide's section says. */
export function kindOf(section: Section): Kind {
  return section.endsWith('-expected') ? 'expected' : section.endsWith('-unexpected') ? 'unexpected' : 'debug';
}

const byId = new Map<string, Explanation[]>();
for (const explanation of explanations) {
  for (const id of explanation.ids) byId.set(id, [...(byId.get(id) ?? []), explanation]);
}

/**
 * The explanations of a catalogue entry: first the group under the entry's own heading, then
 * any other group the guide also shows it in.
 */
export function explanationsOf(message: { id: string; section: Section; heading: string }): Explanation[] {
  const all = byId.get(message.id) ?? [];
  const own = all.filter((e) => e.section === message.section && e.heading === message.heading);
  return [...own, ...all.filter((e) => !own.includes(e))];
}

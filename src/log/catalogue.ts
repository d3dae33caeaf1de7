// Every message of the NTLS log-message guide (shared/seed/ntls-log-reference.txt), to the
// letter: spelling slips are kept ("Intiating", "incompatable", "shut downed", "NTLA") because
// operators grep for them. The guide's editorial marks are not text: "[sic]" is dropped and a
// trailing "*" / "**" points to a footnote variant, which is an entry of its own here (or a
// declared value of a placeholder: `values`). Where the guide shows a doubled space it writes a
// no-break space and a space (it was converted from HTML); the lines here use plain spaces.
// test/log/catalogue.test.ts holds this table against the guide line by line.

import type { Label, Message, MessageDefinition, Section, Severity, Shape, TemplateParams } from './message.js';

const PEER = '192.168.0.100/40847';
const CLIENT = '192.168.0.100';
const MODULE = 'Luna SA 5.0 Command Processor';

/** "HSM crypto support ... {state}": the guide's word and its footnote's two others. */
export const hsmCryptoStates = ['enabled', 'disabled', 'NOT enabled'] as const;

/** Entry points of a command processor module, as the guide names them. */
export const processorEntryPoints = [
  'cp_get_supported_versions', 'cp_initialize_p', 'cp_get_processor_name_p', 'cp_shutdown',
  'cp_client_registration_observer', 'cp_configure',
] as const;

/** The `<state string>` of the datapath's "Unexpected ... response in" debug lines. */
export const connectionStateStrings = [
  'IDENTITY STATE', 'HANDSHAKE STATE', 'PROCESSING STATE', 'HEADER STATE', 'COMMAND STATE',
  'CONNECTING STATE', 'IDENTIFYING STATE', 'OUT OF SERVICE STATE', 'REINITIALIZING STATE',
] as const;

interface Def<T extends string> {
  sev: Severity;
  label?: Label;
  code: number;
  rc?: string;
  text: T;
  shape?: Shape;
  example?: TemplateParams<T>;
  values?: { [K in keyof TemplateParams<T>]?: readonly string[] };
}

const labelOf: Record<Severity, Label> = {
  crit: 'critical', err: 'error', warn: 'warning', info: 'info', debug: 'debug',
};

function section(sectionName: Section) {
  let heading = '';
  const under = (h: string) => { heading = h; };
  const def = <T extends string>(d: Def<T>): MessageDefinition<T> => ({
    severity: d.sev,
    label: d.label ?? labelOf[d.sev],
    code: d.code,
    rc: d.rc ?? null,
    template: d.text,
    shape: d.shape ?? 'coded',
    section: sectionName,
    heading,
    example: (d.example ?? {}) as TemplateParams<T>,
    values: d.values ?? {},
  });
  return { under, def };
}

// ---------------------------------------------------------------------------------------------
// Datapath: expected
const dx = section('datapath-expected');
dx.under('Startup');
const datapathExpected = {
  startingUp: dx.def({ sev: 'info', code: 0, text: 'Starting up NTLS........' }),
  enginePreloaded: dx.def({ sev: 'info', code: 0, text: 'luna_engine_preload: SUCCESSFULLY  loaded' }),
  engineCtrlSoPath: dx.def({ sev: 'info', code: 0, text: '1 = ENGINE_ctrl_cmd_string(...SO_PATH...' }),
  engineCtrlId: dx.def({ sev: 'info', code: 0, text: '1 = ENGINE_ctrl_cmd_string(...ID...) ' }),
  engineCtrlLoad: dx.def({ sev: 'info', code: 0, text: '1 = ENGINE_ctrl_cmd_string(...LOAD...' }),
  engineEnabledAllOps: dx.def({ sev: 'info', code: 0, text: 'luna_engine_load: SUCCESSFULLY  enabled for ALL ops' }),
  hsmCryptoSupport: dx.def({
    sev: 'info', code: 0, text: 'HSM crypto support for data path SSL operations {state}',
    example: { state: 'enabled' }, values: { state: hsmCryptoStates },
  }),
  hsmCryptoSupportOlder: dx.def({
    sev: 'info', code: 0, text: 'HSM crypto support for NTLS SSL operations {state}',
    example: { state: 'enabled' }, values: { state: hsmCryptoStates },
  }),
  processorModuleLoaded: dx.def({
    sev: 'info', code: 0, text: '"{module}" module version {version} loaded',
    example: { module: MODULE, version: '1.0' },
  }),
  workersConfigured: dx.def({
    sev: 'info', code: 0,
    text: 'NTLS data path configured with {inbound} inbound worker threads and {outbound} outbound worker threads',
    example: { inbound: 5, outbound: 5 },
  }),
  onlineAndOperational: dx.def({ sev: 'info', code: 0, text: 'NTLS is online and operational.' }),
  tcpKeepAliveConfigured: dx.def({
    sev: 'info', code: 0,
    text: 'Data path TCP keep alive is configured as : TCP_KEEPIDLE = {idle} sec : TCP_KEEPINTVL = {interval} sec : TCP_KEEPCNT = {count} retries',
    example: { idle: 10, interval: 10, count: 2 },
  }),
  cipherListSet: dx.def({
    sev: 'info', code: 0,
    text: 'Data path TCP keep alive is configured as : TCP_KEEPIDLE = {idle} sec : SSL cipher list set to {ciphers}',
    example: { idle: 10, ciphers: 'AES256-GCM-SHA384' },
  }),
};
dx.under('Failed to Enable SSL Engine for All Operations');
const datapathExpected2 = {
  engineSetDefaultAllFailed: dx.def({ sev: 'info', code: 0, text: 'luna_engine_load: failed to ENGINE_set_default for ALL ops' }),
};
dx.under('Client Connections');
const datapathConnections = {
  incomingConnection: dx.def({ sev: 'info', code: 0, text: 'Incoming connection request... : {peer}', example: { peer: PEER } }),
  connectionAccepted: dx.def({ sev: 'info', code: 0xc0000002, text: 'Connection accepted from: {peer}', example: { peer: PEER } }),
  handshakeResult: dx.def({
    sev: 'info', code: 0xc0000002, text: 'Handshake result from: {peer}, result: {result}',
    example: { peer: PEER, result: 'Success' },
  }),
  clientAuthenticated: dx.def({
    sev: 'info', code: 0xc0000002, text: 'NTLS Client "{client}" connected and authenticated : {peer}.',
    example: { client: CLIENT, peer: PEER },
  }),
  connectionTerminating: dx.def({ sev: 'info', code: 0xc0000002, text: 'Connection terminating:  {peer}', example: { peer: PEER } }),
  clientDisconnected: dx.def({
    sev: 'info', code: 0, text: 'NTLA client "{client}" has disconnected: {peer}',
    example: { client: CLIENT, peer: PEER },
  }),
  receiveTimerTerminate: dx.def({
    sev: 'info', code: 0, text: 'Receive timer expired for client "{client}". Terminate client connection: {peer}',
    example: { client: CLIENT, peer: PEER },
  }),
  receiveTimerExpired: dx.def({
    sev: 'info', code: 0, text: 'Receive timer expired for client "{client}" : {peer}',
    example: { client: CLIENT, peer: PEER },
  }),
};
dx.under('Client Credentials Cannot be Verified');
const datapathCredentials = {
  clientCredentialsRejected: dx.def({
    sev: 'info', code: 0xc0000002, text: 'Client credentials cannot be verified. Connection terminated : {peer}',
    example: { peer: PEER },
  }),
};
dx.under('Cache Monitor');
const datapathCacheMonitor = {
  verifyLocationMonitorStarted: dx.def({ sev: 'info', code: 0, text: 'Client certificate verify location monitor started' }),
  verifyLocationCertRemoved: dx.def({
    sev: 'info', code: 0, text: 'Detected client certificate removed from verify location.  Flush verify location cache',
  }),
  verifyLocationMonitorTerminated: dx.def({ sev: 'info', code: 0, text: 'Client certificate verify location monitor terminated' }),
};
dx.under('Connection Instance Added and Removed');
const datapathInstances = {
  connectionInstanceRemoved: dx.def({
    sev: 'info', code: 0, text: 'NTLA Client "{client}" Connection instance removed : {peer}',
    example: { client: CLIENT, peer: PEER },
  }),
  connectionInstanceAdded: dx.def({
    sev: 'info', code: 0, text: 'NTLA Client "{client}" connected and authenticated : {peer}',
    example: { client: CLIENT, peer: PEER },
  }),
  connectionInstanceDisconnected: dx.def({
    sev: 'info', code: 0, text: 'NTLA Client "{client}" has disconnected: {peer}',
    example: { client: CLIENT, peer: PEER },
  }),
};
dx.under('Client Credentials Cannot be Verified');
const datapathNoCredentials = {
  clientCredentialsMissing: dx.def({
    sev: 'info', code: 0, text: 'Client credentials cannot be verified. Connection terminated : {peer}',
    example: { peer: PEER },
  }),
};
dx.under('Handshake Failed');
const datapathHandshake = {
  secureChannelFailed: dx.def({
    sev: 'info', code: 0xc0000711, rc: 'RC_SSL_FAILED_HANDSHAKE',
    text: 'Fail to establish a secure channel with client : {peer} : RC_SSL_FAILED_HANDSHAKE', example: { peer: PEER },
  }),
};
dx.under('Unable to Initialize Server Socket');
const datapathServerSocket = {
  listeningPortBindFailed: dx.def({ sev: 'crit', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'NTLS listening port could not Bind : RC_SOCKET_ERROR' }),
  serverSocketInitFailed: dx.def({ sev: 'err', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Unable to initialize data path server socket : RC_SOCKET_ERROR' }),
  serverSocketInitFailedOlder: dx.def({ sev: 'err', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Unable to initialize NTLS server socket : RC_SOCKET_ERROR' }),
  initializationFailed: dx.def({ sev: 'err', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'NTLS initialization failed : RC_SOCKET_ERROR' }),
};
dx.under('Connected to Server');
const datapathConnectedToServer = {
  connectedToServer: dx.def({
    sev: 'info', code: 0xc0000002, text: '{client} connected to server : {peer}', example: { client: CLIENT, peer: PEER },
  }),
};
dx.under('Shutting Down');
const datapathShutdown = {
  shuttingDown: dx.def({ sev: 'info', code: 0, text: 'Shutting down NTLS....' }),
  initiatingDispatchTermination: dx.def({ sev: 'info', code: 0, text: 'Intiating dispatch termination.' }),
  dispatchingTerminated: dx.def({ sev: 'info', code: 0, text: 'Dispatching has been terminated.' }),
  terminating: dx.def({ sev: 'info', code: 0, text: 'Terminating.' }),
  processorShutDown: dx.def({ sev: 'info', code: 0, text: '"{module}" shut downed', example: { module: MODULE } }),
  terminated: dx.def({ sev: 'info', code: 0, text: 'NTLS terminated' }),
};

// ---------------------------------------------------------------------------------------------
// Datapath: unexpected
const du = section('datapath-unexpected');
du.under('NTLS Terminating');
const datapathTerminating = {
  terminatingCritical: du.def({ sev: 'crit', code: 0xc0000102, text: 'Terminating.' }),
  daemonStartFailed: du.def({ sev: 'crit', code: 0xc0000102, text: 'Failed to start as daemon. Terminating.' }),
  applicationInitFailed: du.def({ sev: 'crit', code: 0xc0000102, text: 'Failed to initialize application. Terminating.' }),
  serverCreateFailed: du.def({ sev: 'crit', code: 0xc0000102, text: 'Failed to create server. Terminating.' }),
};
du.under('Failed to Load SSL Engine');
const datapathEngine = {
  engineByIdFailed: du.def({ sev: 'info', code: 0, text: 'luna_engine_load: failed to ENGINE_by_id' }),
};
du.under('Configured for RSA Operations');
const datapathEngineRsa = {
  engineEnabledRsaOps: du.def({ sev: 'info', code: 0, text: 'luna_engine_load: SUCCESSFULLY  enabled for RSA ops' }),
};
du.under('Failed to Pre-Load SSL Engine');
const datapathEnginePreload = {
  enginePreloadFailed: du.def({ sev: 'info', code: 0, text: 'luna_engine_preload: failed to load' }),
};
du.under('Failed to Enable SSL Engine for RSA Operations');
const datapathEngineRsaFailed = {
  engineSetDefaultRsaFailed: du.def({ sev: 'info', code: 0, text: 'luna_engine_load: failed to ENGINE_set_default for RSA ops' }),
};
du.under('Failed to Initialize');
const datapathInit = {
  processorLibraryMissing: du.def({ sev: 'info', code: 0, text: 'Missing command processor library for NTLS.' }),
  processorModuleNotFound: du.def({
    sev: 'crit', code: 0xc0000102, rc: 'RC_GENERAL_ERROR',
    text: 'Command processor module not found : "{module}" : RC_GENERAL_ERROR', example: { module: MODULE },
  }),
  processorEntryPointMissing: du.def({
    sev: 'crit', code: 0xc0000105, rc: 'RC_FUNCTION_NOT_SUPPORTED',
    text: '{entryPoint} function not found in command processor "{module}" : RC_FUNCTION_NOT_SUPPORTED',
    example: { entryPoint: 'cp_get_supported_versions', module: MODULE }, values: { entryPoint: processorEntryPoints },
  }),
  processorInitFailedForDatapath: du.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Failed to initialize "{module}" module version {version} for data path module version {datapathVersion} : RC_GENERAL_ERROR',
    example: { module: MODULE, version: '1.0', datapathVersion: '1.0' },
  }),
  processorInitFailedOlder: du.def({
    sev: 'err', code: 0xc0000102, rc: 'RC_GENERAL_ERROR',
    text: 'Failed to initialize "{module}" module version {version} : RC_GENERAL_ERROR',
    example: { module: MODULE, version: '1.0' },
  }),
  processorIncompatible: du.def({
    sev: 'err', code: 0xc0000105, rc: 'RC_FUNCTION_NOT_SUPPORTED',
    text: '"{module}" module version {version} is incompatable with data path : RC_FUNCTION_NOT_SUPPORTED',
    example: { module: MODULE, version: '1.0' },
  }),
  opensslLibraryInitFailed: du.def({ sev: 'err', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Unable to initialize openssl library : RC_SOCKET_ERROR' }),
  opensslServerContextFailed: du.def({ sev: 'err', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Unable to initialize openssl server context : RC_SOCKET_ERROR' }),
  applicationSpecificInitFailed: du.def({ sev: 'crit', code: 0xc0000102, text: 'Application specific initialization failed for NTLS.' }),
  dispatcherInitFailed: du.def({ sev: 'crit', code: 0xc0000102, text: 'Unable to initialize dispatcher.' }),
  configClientCertFileInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID',
    text: 'Chrystoki configuration client certificate file name invalid: RC_FILE_NAME_INVALID',
  }),
  configClientKeyFileInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID',
    text: 'Chrystoki configuration client private key file name invalid: RC_FILE_NAME_INVALID',
  }),
  configSslConfigFileInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID',
    text: 'Chrystoki configuration ssl configuration file name invalid: RC_FILE_NAME_INVALID',
  }),
  serverKeyCertCreateFailed: du.def({
    sev: 'crit', code: 0xc0000102, rc: 'RC_GENERAL_ERROR',
    text: 'Failed to create private key/certificate: RC_GENERAL_ERROR, error: {error}', example: { error: -1 },
  }),
};
du.under('No Command Processor Module Configured');
const datapathNoProcessor = {
  defaultProcessorUsed: du.def({
    sev: 'info', code: 0,
    text: 'Data path is not configured with a command processor module.  Use default command processor setting',
  }),
};
du.under('Fail to Accept Connections');
const datapathAccept = {
  newConnectionFailed: du.def({ sev: 'err', code: 0xc0000002, text: 'Unable to create a new connection.' }),
  acceptFailed: du.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Accept failed. Reason: RC_GENERAL_ERROR',
  }),
};
du.under('Fail to Create Client Connection');
const datapathCreateConnection = {
  connectionInstanceCreateFailed: du.def({
    sev: 'err', code: 0xc0000500, rc: 'RC_SOCKET_ERROR',
    text: 'Fail to create connection instance : {peer} : RC_SOCKET_ERROR', example: { peer: PEER },
  }),
  tcpAcceptFailed: du.def({ sev: 'warn', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Fail to accept a client TCP connection : RC_SOCKET_ERROR' }),
};
du.under('Cache Monitor Failed');
const datapathCacheMonitorFailed = {
  cacheMonitorInitFailed: du.def({ sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'CA cache monitor fail to initialize : RC_GENERAL_ERROR' }),
};
du.under('Connection Instance Failures');
const datapathInstanceFailures = {
  timerCreateFailed: du.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to create timer object for connection instance : {peer} : RC_GENERAL_ERROR', example: { peer: PEER },
  }),
  sslObjectCreateFailed: du.def({
    sev: 'err', code: 0xc0000004, rc: 'RC_UNEXPECTED',
    text: 'Fail to create ssl object for connection instance : {peer} : RC_UNEXPECTED', example: { peer: PEER },
  }),
  requestHeaderMalformed: du.def({
    sev: 'crit', code: 0xc0000102, rc: 'RC_DATA_INVALID',
    text: 'Client request header malformed : {peer} : RC_DATA_INVALID', example: { peer: PEER },
  }),
  commandBufferAllocFailedInfo: du.def({
    sev: 'info', code: 0xc0000001, rc: 'RC_MEMORY_ALLOCATION',
    text: 'Fail to allocate command buffer : {peer} : RC_MEMORY_ALLOCATION', example: { peer: PEER },
  }),
  forwardToProcessorFailed: du.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to forward client request to command processor module : {peer} : RC_GENERAL_ERROR', example: { peer: PEER },
  }),
};
du.under('Non-Luna Client Connect Attempt');
const datapathNonLuna = {
  nonLunaClient: du.def({
    sev: 'info', code: 0xc0000004, rc: 'RC_UNEXPECTED',
    text: 'Connection attempt from non-Luna client : {peer} : RC_UNEXPECTED', example: { peer: PEER },
  }),
};
du.under('Command Process Unloaded');
const datapathUnloaded = {
  processorModuleUnloaded: du.def({ sev: 'info', code: 0, text: 'Command Processor module unloaded' }),
};
du.under('SSL Certificates Problems');
const datapathSsl = {
  badSslHandleHostname: du.def({ sev: 'crit', code: 0xc0000701, rc: 'RC_SSL_CTX_ERROR', text: 'Bad SSL handle while determining hostname: RC_SSL_CTX_ERROR' }),
  currentCertUnavailable: du.def({
    sev: 'crit', code: 0xc000070a, rc: 'RC_SSL_INVALID_CERT_STRUCTURE',
    text: 'Failed to get current certificate while determining hostname: RC_SSL_INVALID_CERT_STRUCTURE',
  }),
  certTextUnavailable: du.def({
    sev: 'crit', code: 0xc000070a, rc: 'RC_SSL_INVALID_CERT_STRUCTURE',
    text: 'Failed to get certificate text while determining hostname: RC_SSL_INVALID_CERT_STRUCTURE',
  }),
  invalidClientCertHostname: du.def({
    sev: 'crit', code: 0xc000070a, rc: 'RC_SSL_INVALID_CERT_STRUCTURE',
    text: 'Invalid client certificate while determining hostname: RC_SSL_INVALID_CERT_STRUCTURE',
  }),
  nativeSslCtxUnavailable: du.def({ sev: 'crit', code: 0xc0000701, rc: 'RC_SSL_CTX_ERROR', text: 'Unable to retrieve native SSL CTX handle: RC_SSL_CTX_ERROR' }),
  cipherListError: du.def({ sev: 'crit', code: 0xc0000702, rc: 'RC_SSL_CIPHER_LIST_ERROR', text: 'SSL error setting cipher list: RC_SSL_CIPHER_LIST_ERROR' }),
  configClientCertPathInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID', text: 'Chrystoki configuration client certificate path invalid: RC_FILE_NAME_INVALID',
  }),
  loadVerifyLocationsFailed: du.def({
    sev: 'crit', code: 0xc0000703, rc: 'RC_SSL_CERT_VERIFICATION_LOCATION_ERROR',
    text: 'Load verify locations failed for: {file}, RC_SSL_CERT_VERIFICATION_LOCATION_ERROR', example: { file: 'CACert.pem' },
  }),
  loadVerifyLocationsSingleFailed: du.def({
    sev: 'crit', code: 0xc0000703, rc: 'RC_SSL_CERT_VERIFICATION_LOCATION_ERROR',
    text: 'Load verify locations failed for single client: {file}, RC_SSL_CERT_VERIFICATION_LOCATION_ERROR', example: { file: 'CACert.pem' },
  }),
  configServerCertFileInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID', text: 'Chrystoki configuration server certificate filename invalid: RC_FILE_NAME_INVALID',
  }),
  serverCertLoadFailed: du.def({
    sev: 'crit', code: 0xc0000704, rc: 'RC_SSL_LOAD_SERVER_CERT_ERROR',
    text: 'Chrystoki using server certificate failed: {file}, RC_SSL_LOAD_SERVER_CERT_ERROR', example: { file: '/usr/lunasa/vts/server/server.pem' },
  }),
  configServerKeyFileInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID', text: 'Chrystoki configuration server private key filename invalid: RC_FILE_NAME_INVALID',
  }),
  serverKeyLoadFailed: du.def({
    sev: 'crit', code: 0xc0000705, rc: 'RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR', text: 'Error loading the server private key: RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR',
  }),
  serverKeyCheckFailed: du.def({
    sev: 'crit', code: 0xc0000706, rc: 'RC_SSL_VALIDATE_SERVER_PRIVATE_KEY_ERROR', text: 'Error checking the server private key: RC_SSL_VALIDATE_SERVER_PRIVATE_KEY_ERROR',
  }),
  hostIpAddressUnavailable: du.def({ sev: 'crit', code: 0xc0000406, rc: 'RC_SOCKET_ADDRESS_INVALID', text: 'Fail to retrieve host IP Address : RC_SOCKET_ADDRESS_INVALID' }),
  hostPortUnavailable: du.def({ sev: 'crit', code: 0xc0000406, rc: 'RC_SOCKET_ADDRESS_INVALID', text: 'Fail to retrieve host port : RC_SOCKET_ADDRESS_INVALID' }),
  contextCreateFailed: du.def({ sev: 'crit', code: 0xc0000406, rc: 'RC_SOCKET_ADDRESS_INVALID', text: 'Unable to create context. : RC_SOCKET_ADDRESS_INVALID' }),
  serverForAddressInitFailed: du.def({
    sev: 'crit', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Failed to initialize server for address {peer} : RC_GENERAL_ERROR', example: { peer: PEER },
  }),
  configClientCertFilenameInvalid: du.def({
    sev: 'crit', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Chrystoki configuration client certificate filename invalid: RC_GENERAL_ERROR',
  }),
  clientCertLoadFailed: du.def({
    sev: 'crit', code: 0xc0000708, rc: 'RC_SSL_LOAD_CLIENT_CERT_ERROR',
    text: 'Chrystoki using client certificate failed: {file}, RC_SSL_LOAD_CLIENT_CERT_ERROR', example: { file: 'CACert.pem' },
  }),
  configClientKeyFilenameInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID', text: 'Chrystoki configuration client private key filename invalid: RC_FILE_NAME_INVALID',
  }),
  clientKeyLoadFailed: du.def({
    sev: 'crit', code: 0xc000070b, rc: 'RC_SSL_LOAD_CLIENT_PRIVATE_KEY_ERROR', text: 'Error loading the client private key: RC_SSL_LOAD_CLIENT_PRIVATE_KEY_ERROR',
  }),
  configServerCaFileInvalid: du.def({
    sev: 'crit', code: 0xc0000402, rc: 'RC_FILE_NAME_INVALID',
    text: 'Chrystoki configuration server certificate authority filename invalid: RC_FILE_NAME_INVALID',
  }),
  serverCaLoadFailed: du.def({
    sev: 'crit', code: 0xc0000703, rc: 'RC_SSL_CERT_VERIFICATION_LOCATION_ERROR',
    text: 'Error loading server certificate authorities: RC_SSL_CERT_VERIFICATION_LOCATION_ERROR',
  }),
  contextUpdateFailed: du.def({ sev: 'crit', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Unable to update context. : RC_GENERAL_ERROR' }),
};
du.under('Client Authentication Failures');
const datapathAuth = {
  identityWriteFailed: du.def({
    sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed writing identity string. Reason: RC_GENERAL_ERROR',
  }),
  connectFailed: du.def({ sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed connect. Reason: RC_GENERAL_ERROR' }),
  handshakeFailed: du.def({ sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed handshake. Reason: RC_GENERAL_ERROR' }),
  identifyResult: du.def({
    sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Identify result from: {peer}, result: RC_GENERAL_ERROR', example: { peer: PEER },
  }),
  identityReadFailed: du.def({
    sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed reading identity string. Reason: RC_GENERAL_ERROR',
  }),
  forwardDatalessFailed: du.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to forward dataless client request to command processor module : {peer} : RC_GENERAL_ERROR', example: { peer: PEER },
  }),
  commandBufferAllocFailed: du.def({
    sev: 'crit', code: 0xc0000001, rc: 'RC_MEMORY_ALLOCATION',
    text: 'Fail to allocate command buffer : {peer} : RC_MEMORY_ALLOCATION', example: { peer: PEER },
  }),
  commandBufferReadFailed: du.def({
    sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed reading command buffer. Reason: RC_GENERAL_ERROR',
  }),
  clientWriteFailed: du.def({
    sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed writing to client Reason: RC_GENERAL_ERROR',
  }),
  lastWriteBeforeReinitFailed: du.def({
    sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Last write before reinitializing failed. Reason: RC_GENERAL_ERROR',
  }),
  expectedCancelledOperation: du.def({
    sev: 'info', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Expected cancelled operation, actual: RC_GENERAL_ERROR',
  }),
  reinitializingConnection: du.def({ sev: 'info', code: 0xc0000002, text: 'Reinitializing connection for: {peer}', example: { peer: PEER } }),
  responseBufferUnavailable: du.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Fail to get response buffer: {peer} : RC_GENERAL_ERROR', example: { peer: PEER },
  }),
  clientCertExpected: du.def({ sev: 'err', code: 0xc0000002, text: 'Expecting client certificate. None received.' }),
  clientCertUnavailable: du.def({ sev: 'info', code: 0xc0000002, text: 'Unable to retrieve client certificate.: {peer}', example: { peer: PEER } }),
  serverConnectedFailed: du.def({ sev: 'info', code: 0xc0000002, text: 'cp_server_connected failed : {peer}', example: { peer: PEER } }),
};
du.under('Port Monitoring Failures');
const datapathPort = {
  socketLingerFailed: du.def({ sev: 'crit', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Fail to set socket linger option : RC_SOCKET_ERROR' }),
  socketReuseFailed: du.def({ sev: 'crit', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Fail to set socket reuse option : RC_SOCKET_ERROR' }),
  datapathPortBindFailed: du.def({ sev: 'crit', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Data path listening port could not Bind : RC_SOCKET_ERROR' }),
  socketNonBlockingFailed: du.def({ sev: 'crit', code: 0xc0000500, rc: 'RC_SOCKET_ERROR', text: 'Fail to set socket non-blocking option : RC_SOCKET_ERROR' }),
  portNotListening: du.def({ sev: 'crit', code: 0xc0000002, text: 'Data path listening port not listening' }),
};
du.under('Could Not Initialize Command Processor');
const datapathProcessorInit = {
  processorInitFailed: du.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Failed to initialize "{module}"  module version {version} : RC_GENERAL_ERROR', example: { module: MODULE, version: '1.0' },
  }),
  processorCleanupInitFailed: du.def({ sev: 'err', code: 0xc0000002, text: 'Failed to initialize command processor cleanup mechanism.' }),
  applianceHandlerCreateFailed: du.def({ sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed to create Appliance Handler for NTLS: RC_GENERAL_ERROR.' }),
  applianceHandlerInitFailed: du.def({ sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed to initialize Appliance Handler for NTLS: RC_GENERAL_ERROR.' }),
  serverForNtlsCreateFailed: du.def({ sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed to create server for NTLS: RC_GENERAL_ERROR.' }),
  threadPoolCreateFailed: du.def({ sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Failed to create thread pool for NTLS: RC_GENERAL_ERROR.' }),
};
const dd = section('datapath-debug');
dd.under('Datapath Debug Messages');
const datapathDebug = {
  opensslVersion: dd.def({ sev: 'debug', code: 0, text: 'Data path is using OpenSSL {version}', example: { version: '0.9.5a 1 Apr 2000' } }),
  unexpectedConnectResponse: dd.def({
    sev: 'debug', code: 0xc0000002, shape: 'debug', text: 'Unexpected connect response in {state}',
    example: { state: '<state string>' }, values: { state: connectionStateStrings },
  }),
  unexpectedClientResponse: dd.def({
    sev: 'debug', code: 0xc0000002, shape: 'debug', text: 'Unexpected client response in {state}',
    example: { state: '<state string>' }, values: { state: connectionStateStrings },
  }),
  unexpectedHandshakeResponse: dd.def({
    sev: 'debug', code: 0xc0000002, shape: 'debug', text: 'Unexpected handshake response in {state}',
    example: { state: '<state string>' }, values: { state: connectionStateStrings },
  }),
  unexpectedReadResponse: dd.def({
    sev: 'debug', code: 0xc0000002, shape: 'debug', text: 'Unexpected read response in {state}',
    example: { state: '<state string>' }, values: { state: connectionStateStrings },
  }),
  unexpectedWriteResponse: dd.def({
    sev: 'debug', code: 0xc0000002, shape: 'debug', text: 'Unexpected write response in {state}',
    example: { state: '<state string>' }, values: { state: connectionStateStrings },
  }),
};
du.under('NTLS Crash and Burn');
const datapathCrash = {
  crashStackDumped: du.def({
    sev: 'crit', label: 'info', code: 0, text: 'NTLS CRASH AND BURN! Stack dump saved to {file}',
    example: { file: '/var/log/ntls_bt_2012-02-29_12:05:01' },
  }),
  crashNoStackDump: du.def({ sev: 'crit', label: 'info', code: 0, text: 'NTLS CRASH AND BURN and unable to dump the stack!' }),
};

// ---------------------------------------------------------------------------------------------
// Command processor: expected
const px = section('processor-expected');
px.under('Configured with Worker Threads');
const processorExpected = {
  processorWorkersConfigured: px.def({
    sev: 'info', code: 0, text: 'SA command processor configured with {workers} worker threads', example: { workers: 50 },
  }),
};
const USB = { label: 'Backup1', serial: 123456, slot: 4 };
px.under('USB Backup and PKI Bundle Device');
const processorUsb = {
  usbTokenUndeployed: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'USB token: {label} with serial number: {serial} has been undeployed!',
    example: { label: USB.label, serial: USB.serial },
  }),
  usbTokenRedeployed: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'Re-deployed the  USB token: {label} with serial number: {serial} to Virtual token list',
    example: { label: USB.label, serial: USB.serial },
  }),
  usbTokenAdded: px.def({
    sev: 'info', code: 0, shape: 'bare',
    text: 'Added USB token: {label} with serial number: {serial} at slot: {slot} and container id: {container} to Virtual token list',
    example: { label: USB.label, serial: USB.serial, slot: USB.slot, container: 8 },
  }),
  deployedTokenInserted: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'Deployed token {label} with Serial Number {serial} inserted into slot {slot}!', example: USB,
  }),
  nonDeployedTokenInserted: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'NON Deployed token {label} with Serial Number {serial} inserted into slot {slot}!', example: USB,
  }),
  nonDeployedUnlabelledTokenInserted: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'NON Deployed token with no label and Serial Number {serial} inserted into slot {slot}!',
    example: { serial: USB.serial, slot: USB.slot },
  }),
  deployedTokenEjected: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'Deployed token {label} with Serial Number {serial} ejected from slot {slot}!', example: USB,
  }),
  nonDeployedTokenEjected: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'NON Deployed token {label} with Serial Number {serial} ejected from slot {slot}!', example: USB,
  }),
  nonDeployedUnlabelledTokenEjected: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'NON Deployed token with no label and Serial Number {serial} ejected from slot {slot}!',
    example: { serial: USB.serial, slot: USB.slot },
  }),
  pkiTokenFound: px.def({
    sev: 'info', code: 0, text: 'Waited to find PKI token: {label} with serial number: {serial} at slot: {slot}',
    example: { label: 'PKIToken', serial: USB.serial, slot: USB.slot },
  }),
};
px.under('Command Processor Instance Removed');
const processorInstance = {
  processorInstanceRemoved: px.def({
    sev: 'info', code: 0, shape: 'bare', text: 'Command processor instance for client {client} removed : {peer}',
    example: { client: CLIENT, peer: PEER },
  }),
};
px.under('Shutdown');
// The processor's own shutdown line is datapathShutdown.processorShutDown: same text, level and code.

// ---------------------------------------------------------------------------------------------
// Command processor: unexpected
const pu = section('processor-unexpected');
pu.under('Keep-alive Timer Failures');
const processorKeepalive = {
  keepaliveTimerCreateFailed: pu.def({
    sev: 'warn', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to create client command keepalive timer : {peer} : RC_GENERAL_ERROR', example: { peer: PEER },
  }),
  keepaliveDisabled: pu.def({ sev: 'warn', code: 0, text: 'Client command keepalive function is disabled : {peer}', example: { peer: PEER } }),
};
pu.under('Startup and Operational Failures');
const processorFailures = {
  connectionResponseAllocFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to allocate connection request response buffer [size = {size}] : {peer} :RC_GENERAL_ERROR', example: { size: 100, peer: PEER },
  }),
  terminationResponseAllocFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to allocate termination response buffer [size = {size}] : {peer} :RC_GENERAL_ERROR', example: { size: 100, peer: PEER },
  }),
  slotStateResponseAllocFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to allocate slot state response buffer [size = {size}] : {peer} :RC_GENERAL_ERROR', example: { size: 100, peer: PEER },
  }),
  responseMessageAllocFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to allocate response message buffer [type = {type}] [size = {size}] : {peer} :RC_GENERAL_ERROR',
    example: { type: 7, size: 100, peer: PEER },
  }),
  keepaliveMessageAllocFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Fail to allocate a keep alive message buffer [size = {size}] : {peer} :RC_GENERAL_ERROR', example: { size: 100, peer: PEER },
  }),
  tokenInterfaceInitFailed: pu.def({ sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR', text: 'Fail to initialize token interface : RC_GENERAL_ERROR' }),
  appIdMappingInitFailed: pu.def({ sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR', text: 'Fail to initialize App ID mapping object : RC_GENERAL_ERROR' }),
  remotePedInitFailed: pu.def({ sev: 'err', code: 0xc0000002, shape: 'spaced', text: 'Failed to initialize remote PED support.' }),
  registrationDbInitFailed: pu.def({
    sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR', text: 'Fail to initialize client registration database : RC_GENERAL_ERROR',
  }),
  registrationDbPopulateFailed: pu.def({
    sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR', text: 'Fail to populate client registration database : RC_GENERAL_ERROR',
  }),
  registrationFlagsResetFailed: pu.def({
    sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR', text: 'Fail to reset client registration entries flags : RC_GENERAL_ERROR',
  }),
  tokenManagerCreateFailed: pu.def({ sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR', text: 'Fail to create token manager object : RC_GENERAL_ERROR' }),
  vtokenManagerInitFailed: pu.def({ sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR', text: 'Fail to Initialize VToken Manager : RC_GENERAL_ERROR' }),
  versionNotSupported: pu.def({
    sev: 'err', code: 0xc0000105, shape: 'spaced', rc: 'RC_FUNCTION_NOT_SUPPORTED',
    text: 'Version {version} is not supported by command processor version {processorVersion} : RC_FUNCTION_NOT_SUPPORTED',
    example: { version: '5.0', processorVersion: '1.0' },
  }),
  appIdConnectionCountFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Connection count is not incremented for APP ID [{appId}] : [{mapping}] {peer} :RC_GENERAL_ERROR',
    example: { appId: 'b43 : 0 : 1', mapping: '5 : 1', peer: PEER },
  }),
  attachResponseBufferOutOfMemory: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR',
    text: 'Out of Memory Error in ConnectionClass::AttachResponseBuffer SetResponseBuffer : RC_GENERAL_ERROR',
  }),
  processorInstanceCreateFailed: pu.def({
    sev: 'err', code: 0xc0000001, shape: 'spaced', rc: 'RC_MEMORY_ALLOCATION',
    text: 'Fail to create command processor instance for client {client} : {peer} : RC_MEMORY_ALLOCATION', example: { client: CLIENT, peer: PEER },
  }),
  registrationObserverInvalid: pu.def({ sev: 'err', code: 0xc0000002, shape: 'spaced', text: 'Invalid client registration observer.' }),
  registrationObserverOperationInvalid: pu.def({
    sev: 'err', code: 0xc0000002, shape: 'spaced', text: 'Invalid client registration observer operation: {operation}.', example: { operation: 9 },
  }),
  commandResponseReturnFailed: pu.def({
    sev: 'err', code: 0xc0000002, shape: 'spaced', rc: 'RC_GENERAL_ERROR',
    text: 'Fail to return a command response to {client} : {peer} : RC_GENERAL_ERROR', example: { client: CLIENT, peer: PEER },
  }),
};
pu.under('Fail to Initialize Appliance Statistics');
const processorStatistics = {
  statisticsInitFailed: pu.def({ sev: 'warn', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Fail to initialize appliance statistic object : RC_GENERAL_ERROR' }),
};
pu.under('Client Credentials Cannot be Verified');
const processorCredentials = {
  clientCredentialsUnverified: pu.def({ sev: 'info', code: 0, text: 'Client credentials cannot be verified : {peer}', example: { peer: PEER } }),
};
pu.under('Client Terminating');
const processorTerminating = {
  clientRequestedTermination: pu.def({
    sev: 'info', code: 0, text: 'Client {client} requested termination : {peer}', example: { client: CLIENT, peer: PEER },
  }),
};
pu.under('Unsupported Command');
const processorUnsupported = {
  unsupportedCommand: pu.def({
    sev: 'info', code: 0, shape: 'bare', text: 'Client attempted unsupported command {command}.', example: { command: '0x00000000' },
  }),
};
pu.under('Failure to Retrieve Container List');
const processorContainers = {
  containerListFailed: pu.def({ sev: 'err', code: 0x300000, rc: 'LUNA_RET_DEVICE_ERROR', text: 'Fail to retrieve container list : LUNA_RET_DEVICE_ERROR' }),
  systemContainersLoadFailed: pu.def({ sev: 'crit', code: 0x300000, rc: 'LUNA_RET_DEVICE_ERROR', text: 'Unable to load system containers! : LUNA_RET_DEVICE_ERROR' }),
};
const pd = section('processor-debug');
pd.under('Luna Network HSM 7 Command Processor Debug Messages');
const M = { appId: 'b43 : 0 : 1', mapping: '5 : 1', peer: PEER };
const processorDebug = {
  transientAppIdRemoved: pd.def({
    sev: 'debug', code: 0, text: 'Transient APP ID Mapping [{mapping}] removed :{peer}', example: { mapping: '5 / 5 : 1', peer: PEER },
  }),
  openSession: pd.def({
    sev: 'debug', code: 0, text: 'Open session : [{session}]  : [{mapping}] : {peer}', example: { session: '1 / 0 : 1 : 20', mapping: '5 : 1', peer: PEER },
  }),
  openSessionAppIdNotPersistent: pd.def({
    sev: 'debug', code: 0, text: "Open session APP ID major [{major}] doesn't have 0x80000000 set : [{mapping}] : {peer}",
    example: { major: 'b43', mapping: '5 : 1', peer: PEER },
  }),
  transientAppIdCreated: pd.def({ sev: 'debug', code: 0, text: 'Create transient APP ID mapping for open session : [{appId}] : [{mapping}] : {peer}', example: M }),
  appIdMappingExists: pd.def({ sev: 'debug', code: 0, text: 'APP ID mapping already exist : [{appId}] : [{mapping}] : {peer}', example: M }),
  openSessionAppId: pd.def({ sev: 'debug', code: 0, text: 'Open session get APP ID : [{appId}] : [{mapping}] : {peer}', example: M }),
  closeAllSessions: pd.def({ sev: 'debug', code: 0, text: 'Close all sessions : [{appId}] : [{mapping}] : {peer}', example: M }),
  openAccess: pd.def({
    sev: 'debug', code: 0, text: 'Open Access : {appId}] :{peer} {minor}] : {peer}', example: { appId: 'b43 : 0 : 1', minor: 1, peer: PEER },
  }),
  persistentAppIdCreated: pd.def({ sev: 'debug', code: 0, text: 'Create persistent APP ID mapping for [{appId}] : [{mapping}] : {peer}', example: M }),
  appIdMadePersistent: pd.def({
    sev: 'debug', code: 0, text: 'Change existing APP ID mapping for [{mapping}] to persistent state : [{persistent}] : {peer}',
    example: { mapping: '5 : 1', persistent: '80000005 : 1', peer: PEER },
  }),
  closingAccess: pd.def({ sev: 'debug', code: 0, text: 'Closing Access for [{appId}] : {peer}', example: { appId: 'b43 : 0 : 1', peer: PEER } }),
  closeAccessAppIdNotPersistent: pd.def({
    sev: 'debug', code: 0, text: "Close Access APP ID major [{major}] doesn't have 0x80000000 set : [{mapping}] : {peer}",
    example: { major: 'b43', mapping: '5 : 1', peer: PEER },
  }),
  appIdMappingRemoved: pd.def({ sev: 'debug', code: 0, text: 'APP ID Mapping [{appId}] : [{mapping}] removed :{peer}', example: M }),
  seedRandomBypassed: pd.def({ sev: 'debug', code: 0, text: 'Bypassed LUNA_SEED_RANDOM command : {peer}', example: { peer: PEER } }),
  sessionClosed: pd.def({ sev: 'debug', code: 0, text: 'Closed Session : [{session}]', example: { session: '5 : 1 : 266' } }),
  allSessionsClosed: pd.def({ sev: 'debug', code: 0, text: 'Closed All Sessions : [{mapping}]', example: { mapping: '5 / 5 : 1' } }),
  allSessionsRemoved: pd.def({ sev: 'debug', code: 0, text: 'Removed All Sessions : [{mapping}]', example: { mapping: '5 / 5 : 1 : 20' } }),
  sessionOpened: pd.def({ sev: 'debug', code: 0, text: 'Opened Session : [{session}]', example: { session: '5 / 5 : 1 : 20 : 266' } }),
  vtokenCreated: pd.def({ sev: 'debug', code: 0, text: 'Created VToken for {slot}/{container}.', example: { slot: 4, container: 8 } }),
  viperSlot: pd.def({ sev: 'debug', code: 0, text: 'viper slot = {slot}', example: { slot: 1 } }),
  partitionsFound: pd.def({ sev: 'debug', code: 0, text: 'Found {count} partitions on HSM.', example: { count: 20 } }),
  tokenIndexLookup: pd.def({
    sev: 'debug', code: 0, text: 'Looking for index for token with S/N {serial} amount {count} tokens.', example: { serial: 123456, count: 4 },
  }),
  tokenSerial: pd.def({ sev: 'debug', code: 0, text: 'Token {slot} has S/N {serial}.', example: { slot: 4, serial: 123456 } }),
  tokenDirty: pd.def({ sev: 'debug', code: 0, text: 'Token {slot} is dirty.', example: { slot: 4 } }),
  monitorSlotEntered: pd.def({ sev: 'debug', code: 0, text: 'Entering USBSlotHandler::MonitorSlot for slot {slot}', example: { slot: 4 } }),
  monitorSlotLeft: pd.def({ sev: 'debug', code: 0, text: 'Leaving USBSlotHandler::MonitorSlot for slot {slot}', example: { slot: 4 } }),
  monitorConfigEntered: pd.def({ sev: 'debug', code: 0, text: 'Entering USBSlotHandler::MonitorConfig for slot {slot}', example: { slot: 4 } }),
  monitorConfigLeft: pd.def({ sev: 'debug', code: 0, text: 'Leaving USBSlotHandler::MonitorConfig for slot {slot}', example: { slot: 4 } }),
};
pu.under('Virtual Token Create and Add Failures');
const processorVtoken = {
  vtokenAddFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Unable to add VToken {slot}/{container} to table : RC_GENERAL_ERROR', example: { slot: 4, container: 8 },
  }),
  vtokenStartFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Unable to start VToken {slot}/{container} : RC_GENERAL_ERROR', example: { slot: 4, container: 8 },
  }),
  vtokenInitFailed: pu.def({
    sev: 'err', code: 0xc0000002, rc: 'RC_GENERAL_ERROR', text: 'Unable to initialize VToken {slot}/{container} : RC_GENERAL_ERROR', example: { slot: 4, container: 8 },
  }),
};

const definitions = {
  ...datapathExpected, ...datapathExpected2, ...datapathConnections, ...datapathCredentials,
  ...datapathCacheMonitor, ...datapathInstances, ...datapathNoCredentials, ...datapathHandshake,
  ...datapathServerSocket, ...datapathConnectedToServer, ...datapathShutdown, ...datapathTerminating,
  ...datapathEngine, ...datapathEngineRsa, ...datapathEnginePreload, ...datapathEngineRsaFailed,
  ...datapathInit, ...datapathNoProcessor, ...datapathAccept, ...datapathCreateConnection,
  ...datapathCacheMonitorFailed, ...datapathInstanceFailures, ...datapathNonLuna, ...datapathUnloaded,
  ...datapathSsl, ...datapathAuth, ...datapathPort, ...datapathProcessorInit, ...datapathDebug,
  ...datapathCrash, ...processorExpected, ...processorUsb, ...processorInstance, ...processorKeepalive,
  ...processorFailures, ...processorStatistics, ...processorCredentials, ...processorTerminating,
  ...processorUnsupported, ...processorContainers, ...processorDebug, ...processorVtoken,
};

type Definitions = typeof definitions;
export type MessageId = keyof Definitions;
type Catalogued = { readonly [K in MessageId]: Message<Definitions[K]['template']> };

function withIds(defs: Definitions): Catalogued {
  const out: Record<string, Message> = {};
  for (const [id, def] of Object.entries(defs)) out[id] = Object.freeze({ id, ...def });
  return Object.freeze(out) as unknown as Catalogued;
}

/** The catalogue: `Catalogue.connectionAccepted` and so on. */
export const Catalogue = withIds(definitions);

export const allMessages: readonly Message[] = Object.values(Catalogue);

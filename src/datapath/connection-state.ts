/** The states of a data path connection, named as the guide's debug lines print them. */
export enum ConnectionState {
  Handshake = 'HANDSHAKE STATE',
  Identity = 'IDENTITY STATE',
  Identifying = 'IDENTIFYING STATE',
  Connecting = 'CONNECTING STATE',
  Header = 'HEADER STATE',
  Command = 'COMMAND STATE',
  Processing = 'PROCESSING STATE',
  Reinitializing = 'REINITIALIZING STATE',
  OutOfService = 'OUT OF SERVICE STATE',
}

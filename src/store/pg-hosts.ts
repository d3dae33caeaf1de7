// Several PostgreSQL hosts in store.url, as libpq writes them: postgresql://user@h1:5432,h2:5432/db
// ?target_session_attrs=read-write. node-postgres takes one host, so the pool gets a client class
// that connects to the host in turn: a host that refuses, or (read-write) answers that it is a
// read-only standby, passes the turn to the next. A primary switch (the standby promoted, the old
// primary gone or read-only) is thus followed by the next connections; calls in between answer
// CKR_DEVICE_ERROR and nothing half-written stays (docs/ha.md).

import pg from 'pg';

export interface HostList {
  /** One URL per host, in the order given. */
  urls: string[];
  /** target_session_attrs=read-write (or primary): a read-only server is skipped. */
  readWrite: boolean;
}

/** The hosts of a URL; a URL of one host (or not a URL) is one entry, as it is. */
export function parseHosts(url: string): HostList {
  const match = /^(postgres(?:ql)?:\/\/)([^@/?]*@)?([^/?]*)(.*)$/.exec(url);
  if (!match) return { urls: [url], readWrite: false };
  const [, scheme, user = '', hosts, rest = ''] = match;
  const [path, query = ''] = rest.split('?', 2) as [string, string?];
  const params = new URLSearchParams(query);
  const attrs = params.get('target_session_attrs');
  params.delete('target_session_attrs');
  const readWrite = attrs === 'read-write' || attrs === 'primary';
  const left = params.toString();
  const list = hosts!.split(',').filter(Boolean);
  if (list.length <= 1 && attrs === null) return { urls: [url], readWrite: false };
  return { urls: (list.length ? list : ['']).map((h) => `${scheme}${user}${h}${path}${left ? `?${left}` : ''}`), readWrite };
}

/** Which host the next connection tries. */
class Turn {
  private index = 0;
  constructor(readonly list: HostList) {}

  current(): number {
    return this.index;
  }

  /** The host at `index` failed: the next one's turn (unless another failure moved it already). */
  failed(index: number): void {
    if (this.index === index) this.index = (index + 1) % this.list.urls.length;
  }
}

/** The failure kinds that mean the server is not (or no longer) the primary. */
export function isReadOnlyError(error: unknown): boolean {
  return (error as { code?: string }).code === '25006';
}

export interface HostAwareClient extends pg.Client {
  /** The turn's index this client connected to: the pool passes the turn on when it fails. */
  readonly hostIndex: number;
  readonly passTurn: () => void;
}

/** A pg.Client class for the pool that follows the host list. */
export function hostListClient(list: HostList): typeof pg.Client {
  const turn = new Turn(list);
  return class HostListClient extends pg.Client {
    readonly hostIndex: number;
    readonly passTurn: () => void;

    constructor(config?: string | pg.ClientConfig) {
      const index = turn.current();
      super({ ...(typeof config === 'object' ? config : {}), connectionString: list.urls[index] });
      this.hostIndex = index;
      this.passTurn = () => turn.failed(index);
    }

    // @ts-expect-error -- both forms of pg.Client.connect (callback and promise) are kept
    override connect(callback?: (error?: Error | null) => void): Promise<void> | undefined {
      const connecting = (async () => {
        try {
          await super.connect();
        } catch (error) {
          this.passTurn();
          throw error;
        }
        if (!list.readWrite) return;
        const answer = await super.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
        if (answer.rows[0]?.transaction_read_only === 'on') {
          this.passTurn();
          await super.end().catch(() => undefined);
          throw new Error(`host ${this.hostIndex + 1} of store.url is a read-only standby`);
        }
      })();
      if (!callback) return connecting;
      connecting.then(() => callback(null), (error: Error) => callback(error));
      return undefined;
    }
  } as unknown as typeof pg.Client;
}

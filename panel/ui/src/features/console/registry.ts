// One console connection per server for the whole app: the overview (live usage) and the
// console page share it, and moving between them keeps the socket and the lines shown. A
// connection nobody uses is closed after a short while.
import { ConsoleConnection } from "./connection";
import { consoleUrl } from "./messages";

const LINGER_MS = 15_000;

interface Entry {
  connection: ConsoleConnection;
  users: number;
  closeTimer: number | null;
}

export class ConsoleRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly onCreate: (serverId: string, connection: ConsoleConnection) => void,
  ) {}

  /** The server's connection (made, not yet started, when there is none). */
  get(serverId: string): ConsoleConnection {
    return this.entry(serverId).connection;
  }

  /** Starts the connection if needed and keeps it open until the returned release is called. */
  acquire(serverId: string): () => void {
    const entry = this.entry(serverId);
    entry.users += 1;
    if (entry.closeTimer !== null) {
      window.clearTimeout(entry.closeTimer);
      entry.closeTimer = null;
    }
    entry.connection.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.users -= 1;
      if (entry.users === 0) {
        entry.closeTimer = window.setTimeout(() => {
          entry.connection.dispose();
          if (this.entries.get(serverId) === entry) this.entries.delete(serverId);
        }, LINGER_MS);
      }
    };
  }

  private entry(serverId: string): Entry {
    let entry = this.entries.get(serverId);
    if (entry === undefined) {
      const connection = new ConsoleConnection({ url: consoleUrl(window.location, serverId) });
      entry = { connection, users: 0, closeTimer: null };
      this.entries.set(serverId, entry);
      this.onCreate(serverId, connection);
    }
    return entry;
  }
}

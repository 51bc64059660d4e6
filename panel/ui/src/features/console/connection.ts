// One console WebSocket of one server, kept open across reconnects: it reconnects with backoff
// after a lost connection (and says when), stops for good when the panel says retrying cannot
// help (no access, suspended, logged out), drops the backlog a new socket replays, and keeps
// the lines shown so a terminal opened later starts with them.
import type { ConsoleClientMessage, ConsoleServerMessage } from "../../api/client";
import { type BackoffPolicy, CONSOLE_BACKOFF, backoffDelay } from "./backoff";
import { closeVerdict } from "./closeCodes";
import { CONSOLE_SUBPROTOCOL, parseServerMessage } from "./messages";
import { CommandHistory } from "./history";
import { skippedLines } from "./output";
import { ReplayFilter } from "./replay";

export type ConnectionPhase =
  | { phase: "connecting"; attempt: number }
  | { phase: "open" }
  | { phase: "waiting"; attempt: number; retryAt: number; message: string }
  | { phase: "closed"; message: string; login: boolean };

export interface ConsoleSnapshot {
  connection: ConnectionPhase;
  /** Lines the node reported skipped (output rate limit) since this page opened the console. */
  skipped: number;
  /** The last message the panel refused, e.g. a command without the console.write permission. */
  refusal: { code: string; message: string } | null;
}

/** The part of `WebSocket` this uses (tests pass their own). */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
}

export interface ConnectionOptions {
  url: string;
  openSocket?: (url: string, protocol: string) => SocketLike;
  backoff?: BackoffPolicy;
  /** Lines kept for terminals opened later (and for recognising a replayed backlog). */
  keepLines?: number;
  now?: () => number;
  random?: () => number;
  setTimer?: (callback: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

type Listener = () => void;
type LineListener = (line: string) => void;
type MessageListener = (message: ConsoleServerMessage) => void;

export class ConsoleConnection {
  private readonly options: Required<ConnectionOptions>;
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private disposed = false;
  private readonly replay: ReplayFilter;
  private readonly shown: string[] = [];
  private snapshot: ConsoleSnapshot = {
    connection: { phase: "connecting", attempt: 0 },
    skipped: 0,
    refusal: null,
  };
  private readonly listeners = new Set<Listener>();
  private readonly lineListeners = new Set<LineListener>();
  private readonly messageListeners = new Set<MessageListener>();
  /** Commands sent through this console, for the input's Up and Down keys. */
  readonly history = new CommandHistory(100);

  constructor(options: ConnectionOptions) {
    this.options = {
      openSocket: (url, protocol) => new WebSocket(url, protocol),
      backoff: CONSOLE_BACKOFF,
      keepLines: 1000,
      now: () => Date.now(),
      random: () => Math.random(),
      setTimer: (callback, ms) => window.setTimeout(callback, ms),
      clearTimer: (timer) => {
        window.clearTimeout(timer as number);
      },
      ...options,
    };
    this.replay = new ReplayFilter(this.options.keepLines);
  }

  start(): void {
    if (this.socket === null && !this.disposed) this.connect();
  }

  /** Snapshot for `useSyncExternalStore`: a new object only when something changed. */
  readonly getSnapshot = (): ConsoleSnapshot => this.snapshot;

  readonly subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Lines as they are shown; `lines()` has the ones shown before subscribing. */
  onLine(listener: LineListener): () => void {
    this.lineListeners.add(listener);
    return () => this.lineListeners.delete(listener);
  }

  onMessage(listener: MessageListener): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  lines(): readonly string[] {
    return this.shown;
  }

  /** Sends a command or power message; false when the socket is not open. */
  send(message: ConsoleClientMessage): boolean {
    if (this.snapshot.connection.phase !== "open" || this.socket === null) return false;
    this.socket.send(JSON.stringify(message));
    if (this.snapshot.refusal !== null) this.update({ refusal: null });
    return true;
  }

  /** Skips the wait of a scheduled reconnect. */
  retryNow(): void {
    if (this.snapshot.connection.phase !== "waiting" || this.disposed) return;
    this.options.clearTimer(this.timer);
    this.timer = null;
    this.connect();
  }

  dispose(): void {
    this.disposed = true;
    this.options.clearTimer(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      socket.onclose = null;
      socket.close(1000, "page closed");
    }
    this.listeners.clear();
    this.lineListeners.clear();
    this.messageListeners.clear();
  }

  private connect(): void {
    this.update({ connection: { phase: "connecting", attempt: this.attempt } });
    const socket = this.options.openSocket(this.options.url, CONSOLE_SUBPROTOCOL);
    this.socket = socket;
    this.replay.reconnected();
    socket.onopen = () => {
      if (this.socket === socket) this.update({ connection: { phase: "open" } });
    };
    socket.onmessage = (event) => {
      if (this.socket === socket && typeof event.data === "string") this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.closed(event.code, event.reason);
    };
  }

  private receive(text: string): void {
    const message = parseServerMessage(text);
    if (message === null) return;
    // A message means the panel accepted this socket: the next loss starts the backoff over.
    this.attempt = 0;
    if (message.type === "output") {
      for (const line of this.replay.feed(message.line)) this.show(line);
    } else if (message.type === "error") {
      this.update({ refusal: { code: message.code, message: message.message } });
    }
    for (const listener of this.messageListeners) listener(message);
  }

  private show(line: string): void {
    this.shown.push(line);
    if (this.shown.length > this.options.keepLines) this.shown.shift();
    const skipped = skippedLines(line);
    if (skipped !== null) this.update({ skipped: this.snapshot.skipped + skipped });
    for (const listener of this.lineListeners) listener(line);
  }

  private closed(code: number, reason: string): void {
    this.socket = null;
    const verdict = closeVerdict(code, reason);
    if (verdict.kind !== "retry") {
      this.update({
        connection: { phase: "closed", message: verdict.message, login: verdict.kind === "login" },
      });
      return;
    }
    this.attempt += 1;
    const delay = backoffDelay(this.options.backoff, this.attempt, this.options.random());
    this.update({
      connection: {
        phase: "waiting",
        attempt: this.attempt,
        retryAt: this.options.now() + delay,
        message: verdict.message,
      },
    });
    this.timer = this.options.setTimer(() => {
      this.timer = null;
      if (!this.disposed) this.connect();
    }, delay);
  }

  private update(change: Partial<ConsoleSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    for (const listener of this.listeners) listener();
  }
}

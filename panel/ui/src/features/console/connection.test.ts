import { describe, expect, it } from "vitest";
import { ConsoleConnection, type SocketLike } from "./connection";

class FakeSocket implements SocketLike {
  sent: string[] = [];
  closedWith: number | null = null;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocol: string,
  ) {}

  send(data: string): void {
    this.sent.push(data);
  }

  close(code?: number): void {
    this.closedWith = code ?? 1005;
  }

  open(): void {
    this.onopen?.(new Event("open"));
  }

  receive(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }

  drop(code: number, reason = ""): void {
    this.onclose?.({ code, reason } as CloseEvent);
  }
}

/** A connection whose sockets, clock and timers the test drives. */
function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { callback: () => void; ms: number; cancelled: boolean }[] = [];
  let now = 1_000_000;
  const connection = new ConsoleConnection({
    url: "ws://panel/api/servers/s1/console",
    openSocket: (url, protocol) => {
      const socket = new FakeSocket(url, protocol);
      sockets.push(socket);
      return socket;
    },
    random: () => 0,
    now: () => now,
    setTimer: (callback, ms) => {
      const timer = { callback, ms, cancelled: false };
      timers.push(timer);
      return timer;
    },
    clearTimer: (timer) => {
      if (timer !== null) (timer as { cancelled: boolean }).cancelled = true;
    },
  });
  const latest = () => {
    const socket = sockets.at(-1);
    if (socket === undefined) throw new Error("no socket was opened");
    return socket;
  };
  const fireTimer = () => {
    const timer = timers.filter((candidate) => !candidate.cancelled).at(-1);
    if (timer === undefined) throw new Error("no timer is pending");
    timer.cancelled = true;
    now += timer.ms;
    timer.callback();
  };
  return { connection, sockets, timers, latest, fireTimer };
}

describe("ConsoleConnection", () => {
  it("opens the console with the documented subprotocol and shows output", () => {
    const { connection, latest } = harness();
    const shown: string[] = [];
    connection.onLine((line) => shown.push(line));
    connection.start();
    expect(latest().protocol).toBe("stellarstack.console.v1");
    expect(connection.getSnapshot().connection.phase).toBe("connecting");
    latest().open();
    latest().receive({ type: "status", state: "Running" });
    latest().receive({ type: "output", line: "ready" });
    expect(connection.getSnapshot().connection.phase).toBe("open");
    expect(shown).toEqual(["ready"]);
    expect(connection.lines()).toEqual(["ready"]);
  });

  it("sends commands only while open", () => {
    const { connection, latest } = harness();
    connection.start();
    expect(connection.send({ type: "command", line: "say early" })).toBe(false);
    latest().open();
    expect(connection.send({ type: "command", line: "say hi" })).toBe(true);
    expect(latest().sent).toEqual(['{"type":"command","line":"say hi"}']);
  });

  it("reconnects after a lost connection, waiting longer each time, and says when", () => {
    const { connection, sockets, timers, latest, fireTimer } = harness();
    connection.start();
    latest().open();
    latest().drop(1006);
    const waiting = connection.getSnapshot().connection;
    expect(waiting).toMatchObject({ phase: "waiting", attempt: 1 });
    expect(timers.at(-1)?.ms).toBe(1000);
    fireTimer();
    expect(sockets).toHaveLength(2);
    expect(connection.getSnapshot().connection).toEqual({ phase: "connecting", attempt: 1 });
    // Closed before the panel said anything (e.g. too many consoles): the wait doubles.
    latest().drop(1013, "too many consoles");
    expect(connection.getSnapshot().connection).toMatchObject({
      phase: "waiting",
      attempt: 2,
      message: "Too many consoles are open: too many consoles.",
    });
    expect(timers.at(-1)?.ms).toBe(2000);
    fireTimer();
    // Once the panel speaks, the next loss starts from the shortest wait again.
    latest().open();
    latest().receive({ type: "status", state: "Running" });
    latest().drop(1006);
    expect(timers.at(-1)?.ms).toBe(1000);
  });

  it("does not show the backlog a new socket replays twice", () => {
    const { connection, latest, fireTimer } = harness();
    const shown: string[] = [];
    connection.onLine((line) => shown.push(line));
    connection.start();
    latest().open();
    for (const line of ["boot", "ready"]) latest().receive({ type: "output", line });
    latest().drop(1006);
    fireTimer();
    latest().open();
    for (const line of ["boot", "ready", "[say] after"]) latest().receive({ type: "output", line });
    expect(shown).toEqual(["boot", "ready", "[say] after"]);
  });

  it.each([
    [4403, false],
    [4409, false],
    [4401, true],
  ])("stops for good on close code %i (login: %s)", (code, login) => {
    const { connection, timers, latest } = harness();
    connection.start();
    latest().open();
    latest().drop(code, "why");
    expect(connection.getSnapshot().connection).toMatchObject({ phase: "closed", login });
    expect(timers).toHaveLength(0);
  });

  it("counts skipped lines and keeps the panel's refusals until the next send", () => {
    const { connection, latest } = harness();
    connection.start();
    latest().open();
    latest().receive({ type: "output", line: "[stellarstack] 5 console lines skipped (x)" });
    latest().receive({ type: "output", line: "[stellarstack] 7 console lines skipped (x)" });
    latest().receive({ type: "error", code: "not_running", message: "the server is not running" });
    expect(connection.getSnapshot().skipped).toBe(12);
    expect(connection.getSnapshot().refusal).toEqual({
      code: "not_running",
      message: "the server is not running",
    });
    connection.send({ type: "command", line: "status" });
    expect(connection.getSnapshot().refusal).toBeNull();
  });

  it("reconnects at once when asked during a wait", () => {
    const { connection, sockets, timers, latest } = harness();
    connection.start();
    latest().drop(1006);
    connection.retryNow();
    expect(sockets).toHaveLength(2);
    expect(timers.every((timer) => timer.cancelled)).toBe(true);
  });

  it("closes its socket and stops reconnecting when disposed", () => {
    const { connection, sockets, timers, latest } = harness();
    connection.start();
    latest().open();
    const socket = latest();
    connection.dispose();
    expect(socket.closedWith).toBe(1000);
    socket.drop(1000);
    expect(timers).toHaveLength(0);
    connection.start();
    expect(sockets).toHaveLength(1);
  });

  it("keeps only the most recent lines for terminals opened later", () => {
    const sockets: FakeSocket[] = [];
    const connection = new ConsoleConnection({
      url: "ws://x",
      keepLines: 2,
      openSocket: (url, protocol) => {
        const socket = new FakeSocket(url, protocol);
        sockets.push(socket);
        return socket;
      },
    });
    connection.start();
    const socket = sockets[0];
    if (socket === undefined) throw new Error("no socket");
    socket.open();
    for (const line of ["1", "2", "3"]) socket.receive({ type: "output", line });
    expect(connection.lines()).toEqual(["2", "3"]);
  });
});

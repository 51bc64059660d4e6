// What a closed console socket means for the user, from the close codes the panel documents
// (docs/panel-server-io.md, "Limits and close codes").

export type CloseVerdict =
  | { kind: "retry"; message: string }
  | { kind: "login"; message: string }
  | { kind: "final"; message: string };

export function closeVerdict(code: number, reason: string): CloseVerdict {
  const because = reason ? `: ${reason}` : "";
  switch (code) {
    case 4401:
      return { kind: "login", message: `Your session ended${because}.` };
    case 4403:
      return { kind: "final", message: `You cannot see this console${because}.` };
    case 4409:
      return { kind: "final", message: `The server is suspended${because}.` };
    case 4502:
      return { kind: "retry", message: `The node failed under the console${because}.` };
    case 1013:
      return { kind: "retry", message: `Too many consoles are open${because}.` };
    case 1008:
      return { kind: "retry", message: `Too many messages were sent${because}.` };
    case 1009:
      return { kind: "retry", message: `A message was too large${because}.` };
    case 1000:
    case 1001:
      return { kind: "retry", message: `The panel closed the console${because}.` };
    default:
      return { kind: "retry", message: `The connection to the panel was lost${because}.` };
  }
}

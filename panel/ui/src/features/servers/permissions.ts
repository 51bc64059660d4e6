// Which permission nodes a caller holds decides what the UI offers; the panel decides what it
// allows (and refuses anything else, whatever the UI shows).

export type HeldNodes = "all" | readonly string[];

export function holds(nodes: HeldNodes, node: string): boolean {
  return nodes === "all" || nodes.includes(node);
}

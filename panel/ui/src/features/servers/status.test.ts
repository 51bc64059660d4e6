import { describe, expect, it } from "vitest";
import type { Server } from "../../api/client";
import { readLimits, readStatus, serverAddresses } from "./status";

function server(fields: Partial<Server>): Server {
  return {
    id: "s1",
    name: "Survival",
    description: "",
    owner_id: "u1",
    target_kind: "docker",
    node_id: "n1",
    kubernetes_target_id: null,
    namespace: "default",
    resource_name: "gs-s1",
    blueprint: "toy",
    external: false,
    suspended: false,
    allocation_limit: 1,
    backup_limit: 3,
    schedule_limit: 10,
    state: "Running",
    status: {},
    status_read_at: null,
    allocations: [],
    spec: null,
    backend_error: null,
    created_at: "2026-01-01T00:00:00Z",
    ...fields,
  };
}

describe("readStatus", () => {
  it("reads the fields it knows and ignores the wrong types", () => {
    const view = readStatus({
      reason: "Ready",
      message: 7,
      address: "203.0.113.5",
      ports: [{ name: "game", protocol: "UDP", port: 4534 }, { name: "broken" }, "junk"],
      startedAt: "2026-12-07T22:44:44Z",
      stateSince: "not a date",
      restartCount: 2,
      lastExit: { exitCode: 137, reason: "OOMKilled" },
    });
    expect(view).toEqual({
      reason: "Ready",
      message: "",
      address: "203.0.113.5",
      ports: [{ name: "game", protocol: "UDP", port: 4534 }],
      startedAt: new Date("2026-12-07T22:44:44Z"),
      stateSince: null,
      restartCount: 2,
      lastExit: { exitCode: 137, reason: "OOMKilled" },
    });
  });

  it("has defaults for an empty status", () => {
    expect(readStatus({})).toMatchObject({ address: null, ports: [], lastExit: null });
  });
});

describe("serverAddresses", () => {
  it("prefers the ports the status reports at its address", () => {
    const addresses = serverAddresses(
      server({
        status: { address: "203.0.113.5", ports: [{ name: "game", protocol: "UDP", port: 4534 }] },
        allocations: [{ id: "a", ip: "0.0.0.0", port: 4534, alias: null }],
      }),
    );
    expect(addresses).toEqual([{ address: "203.0.113.5:4534", label: "game (UDP)" }]);
  });

  it("falls back to the allocations, primary first, aliases as host names", () => {
    const addresses = serverAddresses(
      server({
        allocations: [
          { id: "a", ip: "127.0.0.1", port: 25565, alias: null },
          { id: "b", ip: "10.0.0.1", port: 25566, alias: "play.example.com" },
        ],
      }),
    );
    expect(addresses).toEqual([
      { address: "127.0.0.1:25565", label: "primary" },
      { address: "play.example.com:25566", label: "play.example.com" },
    ]);
  });

  it("is empty for a server without ports", () => {
    expect(serverAddresses(server({}))).toEqual([]);
  });
});

describe("readLimits", () => {
  it("reads the resources of the spec", () => {
    const limits = readLimits(
      server({ spec: { resources: { cpu: "500m", memory: "128Mi", disk: "1Gi" } } }),
    );
    expect(limits).toEqual({ cpu: "500m", memoryBytes: 128 * 1024 ** 2, diskBytes: 1024 ** 3 });
  });

  it("knows nothing without a spec", () => {
    expect(readLimits(server({}))).toEqual({ cpu: null, memoryBytes: null, diskBytes: null });
  });
});

export { useServer, useServers, useServerStats } from "./api";
export { serverKeys } from "./keys";
export { ServerScope, useCan, useServerScope } from "./ServerScope";

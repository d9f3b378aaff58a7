// Client factories: nats.ws over the `ws` package (Node) and nats.js over TCP. Both packages are
// independent builds, so helpers such as headers() come from the package of the connection they
// are used with.
import * as natsTcp from "nats";
import * as natsWs from "nats.ws";
import { wsFactory, within } from "./harness.mjs";

export { natsTcp, natsWs };

const base = {
  reconnect: false,
  timeout: 5000,
  maxReconnectAttempts: 0,
};

/** nats.ws client on `server` (options: ws = `ws` package options, sink = array of sockets). */
export function wsClient(server, opts = {}, { ws = {}, sink, url } = {}) {
  return within(
    8000,
    natsWs.connect({
      ...base,
      servers: url || server.wsUrl,
      wsFactory: wsFactory(ws, sink),
      ...opts,
    }),
    "nats.ws connect",
  );
}

/** nats.js TCP client on `server`. */
export function tcpClient(server, opts = {}) {
  return within(8000, natsTcp.connect({ ...base, servers: server.tcpUrl, ...opts }), "nats.js connect");
}

/** Both kinds, labelled, for cross-transport matrices. */
export const transports = {
  ws: { connect: wsClient, lib: natsWs },
  tcp: { connect: tcpClient, lib: natsTcp },
};

/** Closes every connection, ignoring errors, bounded in time. */
export async function closeAll(conns) {
  await Promise.all(
    conns.filter(Boolean).map((nc) => within(3000, nc.close(), "close").catch(() => {})),
  );
}

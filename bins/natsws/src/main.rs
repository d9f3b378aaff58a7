//! natsws: a NATS server whose first-class transport is WebSocket.

fn main() {}

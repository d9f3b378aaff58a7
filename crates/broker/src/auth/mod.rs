//! Authentication and authorization decisions (spec/protocol.md auth sections).

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_handshake::fuzzing::ws_handshake_request(data));

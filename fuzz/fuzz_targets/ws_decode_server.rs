#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_codec::fuzzing::ws_decode_server(data));

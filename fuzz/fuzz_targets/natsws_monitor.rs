#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| natsws::fuzzing::natsws_monitor(data));

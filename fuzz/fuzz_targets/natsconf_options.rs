#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| natsconf::fuzzing::natsconf_options(data));

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::scim_filter(data));

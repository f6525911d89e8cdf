#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vegard_fuzz::bodies::raw_arrows(data));

//! The model path: formula text → `ModelFormula::parse` → compiled program, derivatives,
//! structure and printing, each against an independent oracle (see `src/model.rs`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sepfit_fuzz::model::check(data));

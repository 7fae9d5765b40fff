//! The loss path: loss text + declarations → `matrix::LossFormula` → gradients, printing and
//! evaluation, against central differences and the printed forms (see `src/loss.rs`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sepfit_fuzz::loss::check(data));

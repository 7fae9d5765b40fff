//! Test support shared by the integration tests (each test crate uses a part of it, hence
//! `dead_code` is allowed here).
#![allow(dead_code)]

pub mod nist;
pub mod reference;

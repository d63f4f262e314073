//! Generation 2 of the `generation` plugin.

const GENERATION: u32 = 2;
include!("../../generation.rs");

//! Generation 1 of the `generation` plugin.

const GENERATION: u32 = 1;
include!("../../generation.rs");

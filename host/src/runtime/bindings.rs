//! Host-side bindings of the `http-plugin` world in `wit/`.
//!
//! Host functions are async (they await PostgreSQL) but look blocking to
//! the guest, so guests in any language can call them.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "http-plugin",
    imports: { default: async },
    exports: { default: async },
});

//! Host bindings of `wit/plugin.wit`, generated once here.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

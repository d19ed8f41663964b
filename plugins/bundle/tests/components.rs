//! Each shipped plugin is a valid component (not a core module) of the `pipecat:plugin` world.

use wasmparser::{Encoding, Parser, Payload, Validator, WasmFeatures};

/// The names a component exports and imports at its top level.
fn top_level_names(bytes: &[u8]) -> (Encoding, Vec<String>, Vec<String>) {
    let mut encoding = None;
    let mut depth = 0usize;
    let (mut exports, mut imports) = (Vec::new(), Vec::new());
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("the bytes parse") {
            Payload::Version { encoding: e, .. } => {
                depth += 1;
                encoding.get_or_insert(e);
            }
            Payload::End(_) => depth -= 1,
            Payload::ComponentExportSection(reader) if depth == 1 => {
                exports.extend(
                    reader
                        .into_iter()
                        .map(|e| e.expect("export").name.0.to_owned()),
                );
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                imports.extend(
                    reader
                        .into_iter()
                        .map(|i| i.expect("import").name.0.to_owned()),
                );
            }
            _ => {}
        }
    }
    (encoding.expect("a version header"), exports, imports)
}

#[test]
fn every_shipped_plugin_is_a_component_exporting_tools() {
    assert_eq!(
        pipecat_plugins::SHIPPED
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>(),
        ["calculator", "weather", "text", "json"]
    );
    for (name, bytes) in pipecat_plugins::SHIPPED {
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(bytes)
            .unwrap_or_else(|e| panic!("{name} does not validate: {e}"));
        let (encoding, exports, imports) = top_level_names(bytes);
        assert_eq!(encoding, Encoding::Component, "{name} is not a component");
        assert_eq!(exports, ["pipecat:plugin/tools@0.1.0"], "{name} exports");
        for import in &imports {
            assert!(
                import.starts_with("pipecat:plugin/") || import.starts_with("wasi:"),
                "{name} imports {import}, outside the plugin world and WASI"
            );
        }
    }
}

#[test]
fn plugins_that_need_the_host_import_it() {
    let (_, _, imports) = top_level_names(pipecat_plugins::WEATHER);
    assert!(
        imports.iter().any(|i| i == "pipecat:plugin/http@0.1.0"),
        "{imports:?}"
    );
    assert!(
        imports.iter().any(|i| i == "pipecat:plugin/config@0.1.0"),
        "{imports:?}"
    );
}

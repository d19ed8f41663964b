//! The plugins Pipecat ships, as `wasm32-wasip2` component bytes built from `plugins/*` of this tree by
//! `build.rs` (through `pipecat-wasm-build`). The server embeds them for `--with-examples`; host tests and
//! benchmarks load them.
//!
//! | plugin | tools |
//! |---|---|
//! | `calculator` | `calculate` |
//! | `weather` | `get_weather` |
//! | `text` | `uppercase`, `lowercase`, `word_count`, `char_count`, `slugify`, `regex_extract`, `truncate`, `replace` |
//! | `json` | `query`, `keys`, `pick` |

include!(concat!(env!("OUT_DIR"), "/components.rs"));

/// Every shipped plugin as `(plugin name, component bytes)`, in a stable order.
pub const SHIPPED: &[(&str, &[u8])] = &[
    ("calculator", CALCULATOR),
    ("weather", WEATHER),
    ("text", TEXT),
    ("json", JSON),
];

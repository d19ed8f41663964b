//! Loading: check the bytes are a component, compile it off the async runtime under a time limit (or load
//! it from the on-disk cache), link it against the host, and list its tools inside the sandbox.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::LoadError;
use crate::sandbox::Shared;

/// WebAssembly magic number.
const MAGIC: &[u8; 4] = b"\0asm";
/// Version field of a core module.
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
/// Version and layer fields of a component.
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

/// Refuses oversized bytes, non-Wasm and core modules before any compilation.
pub(crate) fn check_bytes(bytes: &[u8], max: usize) -> Result<(), LoadError> {
    if bytes.len() > max {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::NotWasm("missing the \\0asm header".into()));
    }
    match <[u8; 4]>::try_from(&bytes[4..8]) {
        Ok(CORE_VERSION) => Err(LoadError::CoreModule),
        Ok(COMPONENT_VERSION) => Ok(()),
        _ => Err(LoadError::NotWasm(format!(
            "unsupported version/layer {:02x?}",
            &bytes[4..8]
        ))),
    }
}

/// A `std::hash::Hasher` over blake3, to turn the engine's compatibility hash into stable bytes.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let hash = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }
}

/// Hex digest identifying the engine's compiled-code format (wasmtime version, settings, CPU features).
pub(crate) fn engine_hash(engine: &Engine) -> String {
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().to_hex()[..16].to_owned()
}

fn cache_path(dir: &Path, id: &str, engine_hash: &str) -> PathBuf {
    dir.join(format!("{id}-{engine_hash}.cwasm"))
}

/// Compiles `bytes` (or loads them from the cache); returns the component and whether it was a cache hit.
pub(crate) async fn compile(
    shared: &Shared,
    bytes: &[u8],
    id: &str,
) -> Result<(Component, bool), LoadError> {
    let cached = shared
        .config
        .cache_dir
        .as_deref()
        .map(|dir| cache_path(dir, id, &shared.engine_hash));
    if let Some(path) = cached.clone().filter(|p| p.is_file()) {
        let engine = shared.engine.clone();
        // SAFETY: the cache folder is written only by this host (see `SandboxConfig::cache_dir`) with
        // artifacts this engine serialized, and the file name includes the engine's compatibility hash.
        let loaded = tokio::task::spawn_blocking(move || unsafe {
            Component::deserialize_file(&engine, &path)
        })
        .await;
        match loaded {
            Ok(Ok(component)) => return Ok((component, true)),
            Ok(Err(error)) => tracing::warn!(%error, id, "unusable cache entry, recompiling"),
            Err(error) => tracing::warn!(%error, id, "cache load task failed, recompiling"),
        }
    }

    let permit = Arc::clone(&shared.compile_permits)
        .acquire_owned()
        .await
        .map_err(|e| LoadError::Internal(e.to_string()))?;
    let engine = shared.engine.clone();
    let bytes = bytes.to_vec();
    let id_owned = id.to_owned();
    // The permit moves into the task: a compilation that outlives its deadline still holds its slot.
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let component =
            Component::new(&engine, &bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if let Some(path) = cached
            && let Err(error) = write_cache(&component, &path)
        {
            tracing::warn!(%error, id = id_owned, "cannot write the compiled component to the cache");
        }
        Ok(component)
    });
    match tokio::time::timeout(shared.config.compile_timeout, task).await {
        Err(_elapsed) => Err(LoadError::CompileTimeout(shared.config.compile_timeout)),
        Ok(Err(join_error)) => Err(LoadError::Internal(format!(
            "compile task failed: {join_error}"
        ))),
        Ok(Ok(result)) => result.map(|component| (component, false)),
    }
}

/// Writes atomically: a temporary file renamed into place, so readers never see half a file.
fn write_cache(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::check_bytes;
    use crate::LoadError;

    #[test]
    fn headers_are_classified() {
        assert_eq!(
            check_bytes(b"hello world", 100),
            Err(LoadError::NotWasm("missing the \\0asm header".into()))
        );
        assert_eq!(
            check_bytes(b"\0asm\x01\0\0\0", 100),
            Err(LoadError::CoreModule)
        );
        assert!(check_bytes(b"\0asm\x0d\0\x01\0", 100).is_ok());
        assert_eq!(
            check_bytes(&[0; 10], 5),
            Err(LoadError::TooLarge { size: 10, max: 5 })
        );
    }
}

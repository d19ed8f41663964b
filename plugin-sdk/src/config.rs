//! Configuration values the workflow grants to this plugin (for example a base URL or an API key name).
//!
//! Compiled natively (in a plugin's unit tests) there is no host: values come from [`set_for_tests`].

/// The value of `key`, if the workflow granted it.
pub fn get(key: &str) -> Option<String> {
    imp::get(key)
}

/// The value of `key`, or `default` when the workflow did not grant it.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// Every granted key and value.
pub fn get_all() -> Vec<(String, String)> {
    imp::get_all()
}

/// Native builds only (unit tests): sets the value `get(key)` returns on this thread.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_for_tests(key: &str, value: &str) {
    imp::VALUES.with(|v| v.borrow_mut().insert(key.to_owned(), value.to_owned()));
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::pipecat::plugin::config;

    pub(super) fn get(key: &str) -> Option<String> {
        config::get(key)
    }

    pub(super) fn get_all() -> Vec<(String, String)> {
        config::get_all()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        pub(super) static VALUES: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub(super) fn get(key: &str) -> Option<String> {
        VALUES.with(|v| v.borrow().get(key).cloned())
    }

    pub(super) fn get_all() -> Vec<(String, String)> {
        VALUES.with(|v| {
            v.borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_values_come_from_set_for_tests() {
        assert_eq!(get("base_url"), None);
        assert_eq!(
            get_or("base_url", "https://default.test"),
            "https://default.test"
        );
        set_for_tests("base_url", "http://127.0.0.1:1");
        assert_eq!(get("base_url").as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(
            get_all(),
            vec![("base_url".to_owned(), "http://127.0.0.1:1".to_owned())]
        );
    }
}

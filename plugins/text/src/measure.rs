//! Counting words and characters.

use crate::case::TextArgs;
use pipecat_plugin_sdk::{ToolError, tool};
use serde::Serialize;

/// Result of `word_count`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Words {
    /// Whitespace-separated words.
    pub words: usize,
}

/// Result of `char_count`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Chars {
    /// Unicode scalar values.
    pub chars: usize,
    /// Characters that are not whitespace.
    pub chars_without_spaces: usize,
    /// UTF-8 bytes.
    pub bytes: usize,
}

/// Counts the whitespace-separated words of the text; returns `{"words": n}`.
#[tool]
pub fn word_count(args: TextArgs) -> Result<Words, ToolError> {
    crate::check_len(&args.text)?;
    Ok(Words {
        words: args.text.split_whitespace().count(),
    })
}

/// Counts the characters of the text; returns `{"chars", "chars_without_spaces", "bytes"}`.
#[tool]
pub fn char_count(args: TextArgs) -> Result<Chars, ToolError> {
    crate::check_len(&args.text)?;
    let text = &args.text;
    Ok(Chars {
        chars: text.chars().count(),
        chars_without_spaces: text.chars().filter(|c| !c.is_whitespace()).count(),
        bytes: text.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(
            word_count(TextArgs {
                text: " one two\tthree\n".into()
            })
            .unwrap(),
            Words { words: 3 }
        );
        assert_eq!(
            char_count(TextArgs {
                text: "héllo wö".into()
            })
            .unwrap(),
            Chars {
                chars: 8,
                chars_without_spaces: 7,
                bytes: 10
            }
        );
    }
}

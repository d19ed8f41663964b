//! Case conversion and slugs.

use pipecat_plugin_sdk::{ToolError, tool};
use schemars::JsonSchema;
use serde::Deserialize;

/// A single text argument.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TextArgs {
    /// The text to work on.
    pub text: String,
}

/// Converts the text to upper case (Unicode-aware).
#[tool]
pub fn uppercase(args: TextArgs) -> Result<String, ToolError> {
    crate::check_len(&args.text)?;
    Ok(args.text.to_uppercase())
}

/// Converts the text to lower case (Unicode-aware).
#[tool]
pub fn lowercase(args: TextArgs) -> Result<String, ToolError> {
    crate::check_len(&args.text)?;
    Ok(args.text.to_lowercase())
}

/// Turns the text into a URL slug: lower-case ASCII letters and digits separated by single hyphens
/// (accented Latin letters lose their accents, other characters separate words).
#[tool]
pub fn slugify(args: TextArgs) -> Result<String, ToolError> {
    crate::check_len(&args.text)?;
    Ok(slug(&args.text))
}

/// The slug of `text`.
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_dash = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = fold_accent(c);
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    out
}

/// Common accented Latin letters to their base letter.
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> TextArgs {
        TextArgs { text: s.into() }
    }

    #[test]
    fn changes_case() {
        assert_eq!(uppercase(text("Straße")).unwrap(), "STRASSE");
        assert_eq!(lowercase(text("ÀB c")).unwrap(), "àb c");
    }

    #[test]
    fn slugifies() {
        assert_eq!(slug("  Hello, World! "), "hello-world");
        assert_eq!(slug("Crème Brûlée -- 2024"), "creme-brulee-2024");
        assert_eq!(slug("!!!"), "");
    }
}

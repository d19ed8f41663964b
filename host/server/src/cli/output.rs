//! Printing answers: pretty JSON for single objects, aligned tables for lists.

use serde_json::Value;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(_) => println!("{value}"),
    }
}

/// The items of a list answer: either a bare array or an object holding the array under `key`
/// (`{"runs": [...], "next_cursor": ...}`), also accepting the usual `data` / `items`.
pub fn list_items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    if let Value::Array(items) = value {
        return items;
    }
    [key, "data", "items"]
        .iter()
        .find_map(|k| value.get(*k).and_then(Value::as_array))
        .map_or(&[], Vec::as_slice)
}

/// The cursor of the next page of a list answer, if there is one.
pub fn next_cursor(value: &Value) -> Option<String> {
    value
        .get("next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// A field of an object as display text: strings as they are, `null`/missing as `-`, anything else as JSON.
pub fn cell(item: &Value, key: &str) -> String {
    match item.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (text, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(text);
            } else {
                out.push_str(&format!("{text:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints the `columns` of every item as a table, or `empty` when there are none.
pub fn print_items(items: &[Value], columns: &[&str], empty: &str) {
    if items.is_empty() {
        println!("{empty}");
        return;
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| cell(item, c)).collect())
        .collect();
    print_table(columns, &rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_items_accepts_arrays_and_wrapped_lists() {
        let bare = json!([{"id": "a"}]);
        let wrapped = json!({"runs": [{"id": "a"}, {"id": "b"}], "next_cursor": null});
        assert_eq!(list_items(&bare, "runs").len(), 1);
        assert_eq!(list_items(&wrapped, "runs").len(), 2);
        assert!(list_items(&json!({}), "runs").is_empty());
        assert_eq!(next_cursor(&wrapped), None);
        assert_eq!(
            next_cursor(&json!({"next_cursor": "x"})).as_deref(),
            Some("x")
        );
    }

    #[test]
    fn cells_show_strings_plainly_and_missing_as_dash() {
        let item = json!({"name": "calc", "version": 2, "gone": null});
        assert_eq!(cell(&item, "name"), "calc");
        assert_eq!(cell(&item, "version"), "2");
        assert_eq!(cell(&item, "gone"), "-");
        assert_eq!(cell(&item, "absent"), "-");
    }
}

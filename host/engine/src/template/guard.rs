//! The per-render byte budget and the guarded builtins (see the module docs, "Limits"): each builtin that
//! walks a sequence or expands text is wrapped to refuse more than [`MAX_ITEMS`] items or widths past
//! [`MAX_WIDTH`], and to charge what it builds to the budget of the render running on this thread.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io;

use minijinja::value::{Kwargs, Rest, StringInput};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::{MAX_ITEMS, MAX_WIDTH, TEMPLATE_RECURSION};

thread_local! {
    /// Bytes the render running on this thread may still build; `None` outside a render.
    static BUDGET_LEFT: Cell<Option<usize>> = const { Cell::new(None) };
    /// Whether that render went over its budget.
    static BUDGET_EXHAUSTED: Cell<bool> = const { Cell::new(false) };
}

/// The budget of one render, on its thread (a render is synchronous), until dropped.
pub(super) struct Budget {
    previous: (Option<usize>, bool),
}

impl Budget {
    pub(super) fn start(bytes: usize) -> Budget {
        Budget {
            previous: (
                BUDGET_LEFT.replace(Some(bytes)),
                BUDGET_EXHAUSTED.replace(false),
            ),
        }
    }

    pub(super) fn exhausted() -> bool {
        BUDGET_EXHAUSTED.get()
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        BUDGET_LEFT.set(self.previous.0);
        BUDGET_EXHAUSTED.set(self.previous.1);
    }
}

fn budget_left() -> usize {
    BUDGET_LEFT.get().unwrap_or(usize::MAX)
}

fn over_budget() -> Error {
    BUDGET_EXHAUSTED.set(true);
    BUDGET_LEFT.set(BUDGET_LEFT.get().map(|_| 0));
    Error::new(ErrorKind::InvalidOperation, "template builds too much data")
}

/// Takes `bytes` from the render's budget.
pub(super) fn charge(bytes: usize) -> Result<(), Error> {
    match BUDGET_LEFT.get() {
        Some(left) if bytes > left => Err(over_budget()),
        Some(left) => {
            BUDGET_LEFT.set(Some(left - bytes));
            Ok(())
        }
        None => Ok(()),
    }
}

/// Bytes of budget one item of a walked value costs: sorting, comparing, hashing or printing a value walks
/// all of it natively, in one instruction, so the walks of a render are bounded by its budget, not by fuel.
const WALK_COST: usize = 8;

/// Refuses a value holding more than [`MAX_ITEMS`] items in all (nested sequences and maps counted too,
/// lazy ones included: `[range(10) * 100000000]` is one item outside and 10⁹ inside) or nested deeper than
/// [`TEMPLATE_RECURSION`], and charges [`WALK_COST`] per item. Sizes are checked before anything is walked,
/// so this costs at most [`MAX_ITEMS`] steps; minijinja's own printing, sorting or hashing of a value walks
/// all of it.
fn check_items(value: &Value) -> Result<(), Error> {
    let mut left = MAX_ITEMS;
    count_items(value, &mut left, 0)
}

fn count_items(value: &Value, left: &mut usize, depth: usize) -> Result<(), Error> {
    if value.as_str().is_some() {
        return Ok(());
    }
    let Some(n) = value.len() else {
        return Ok(());
    };
    if depth > TEMPLATE_RECURSION {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "a value nested too deeply",
        ));
    }
    if n > *left {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("a value of more than {MAX_ITEMS} items"),
        ));
    }
    *left -= n;
    charge(n.saturating_mul(WALK_COST))?;
    let is_map = value.kind() == minijinja::value::ValueKind::Map;
    for item in value.try_iter()? {
        if is_map {
            count_items(&value.get_item(&item)?, left, depth + 1)?;
        } else {
            count_items(&item, left, depth + 1)?;
        }
    }
    Ok(())
}

fn check_at_most(what: &str, n: usize, limit: usize) -> Result<(), Error> {
    if n > limit {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} {n} is over the limit of {limit}"),
        ));
    }
    Ok(())
}

/// Counts what is written, failing once past `limit` (so a huge value is never written out whole).
struct Counter {
    n: usize,
    limit: usize,
}

impl std::fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.n = self.n.saturating_add(s.len());
        if self.n > self.limit {
            return Err(std::fmt::Error);
        }
        Ok(())
    }
}

impl io::Write for Counter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.n = self.n.saturating_add(data.len());
        if self.n > self.limit {
            return Err(io::Error::other("over the template budget"));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length of `value` as text; an error past what is left of the budget.
pub(super) fn value_bytes(value: &Value) -> Result<usize, Error> {
    check_items(value)?;
    if let Some(s) = value.as_str() {
        return Ok(s.len());
    }
    let mut counter = Counter {
        n: 0,
        limit: budget_left(),
    };
    write!(counter, "{value}").map_err(|_| over_budget())?;
    Ok(counter.n)
}

/// Charges what comparing `value` walks: its items, or a string's bytes (compared 16 at a time).
pub(super) fn walk(value: &Value) -> Result<(), Error> {
    match value.as_str() {
        Some(text) => charge(text.len() / 16),
        None => check_items(value),
    }
}

pub(super) fn guard_builtins(env: &mut Environment<'static>) {
    // Filters that walk their input: refused for a sequence of more than MAX_ITEMS items.
    env.add_filter("list", list);
    env.add_filter("sum", sum);
    env.add_filter("unique", unique);
    env.add_filter("sort", sort);
    env.add_filter("reverse", reverse);
    env.add_filter("max", max);
    env.add_filter("min", min);
    env.add_filter("last", last);
    env.add_filter("dictsort", dictsort);
    env.add_filter("items", items);
    env.add_filter("groupby", groupby);
    env.add_filter("map", map);
    env.add_filter("select", select);
    env.add_filter("reject", reject);
    env.add_filter("selectattr", selectattr);
    env.add_filter("rejectattr", rejectattr);
    env.add_filter("chain", chain);
    env.add_filter("zip", zip);
    env.add_filter("batch", batch);
    env.add_filter("slice", slice);
    env.add_test("in", is_in);
    // Tests that compare two values: each walked value charged.
    for (names, test) in [
        (
            &["eq", "equalto", "=="][..],
            is_eq as fn(&Value, &Value) -> Result<bool, Error>,
        ),
        (&["ne", "!="], is_ne),
        (&["lt", "lessthan", "<"], is_lt),
        (&["le", "<="], is_le),
        (&["gt", "greaterthan", ">"], is_gt),
        (&["ge", ">="], is_ge),
    ] {
        for name in names {
            env.add_test(*name, test);
        }
    }
    // Filters that build text: charged what they will build, before they build it.
    env.add_filter("join", join);
    env.add_filter("replace", replace);
    env.add_filter("indent", indent);
    env.add_filter("tojson", tojson);
    env.add_filter("format", format);
    env.add_filter("string", string);
    env.add_filter("pprint", pprint);
    env.add_filter("urlencode", urlencode);
    env.add_filter("lines", lines);
}

mod guarded {
    //! The builtins of `guard_builtins`, each checking its input before calling minijinja's own.

    use std::borrow::Cow;
    use std::fmt::Write as _;

    use minijinja::filters as f;

    use super::*;

    /// Filters that walk their input: minijinja's own, after [`check_items`] of the argument named before `;`.
    macro_rules! walking {
        ($($name:ident($checked:ident; $($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
            pub(super) fn $name($($arg: $ty),*) -> Result<$ret, Error> {
                check_items(&$checked)?;
                f::$name($($arg),*)
            }
        )*};
    }

    walking! {
        list(v; s: &State<'_, '_>, v: Value) -> Value;
        sum(v; s: &State<'_, '_>, v: Value) -> Value;
        unique(v; s: &State<'_, '_>, v: Value, k: Kwargs) -> Value;
        sort(v; s: &State<'_, '_>, v: Value, k: Kwargs) -> Value;
        reverse(v; v: &Value) -> Value;
        max(v; s: &State<'_, '_>, v: Value) -> Value;
        min(v; s: &State<'_, '_>, v: Value) -> Value;
        last(v; v: Value) -> Value;
        dictsort(v; v: &Value, k: Kwargs) -> Value;
        items(v; v: &Value) -> Value;
        groupby(v; v: Value, attr: Option<&str>, k: Kwargs) -> Value;
        map(v; s: &State<'_, '_>, v: Value, args: Rest<Value>) -> Vec<Value>;
        select(v; s: &State<'_, '_>, v: Value, test: Option<Cow<'_, str>>, args: Rest<Value>) -> Vec<Value>;
        reject(v; s: &State<'_, '_>, v: Value, test: Option<Cow<'_, str>>, args: Rest<Value>) -> Vec<Value>;
        selectattr(v; s: &State<'_, '_>, v: Value, attr: Cow<'_, str>, test: Option<Cow<'_, str>>, args: Rest<Value>) -> Vec<Value>;
        rejectattr(v; s: &State<'_, '_>, v: Value, attr: Cow<'_, str>, test: Option<Cow<'_, str>>, args: Rest<Value>) -> Vec<Value>;
    }

    pub(super) fn chain(s: &State<'_, '_>, v: Value, others: Rest<Value>) -> Result<Value, Error> {
        check_items(&v)?;
        others.iter().try_for_each(check_items)?;
        f::chain(s, v, others)
    }
    pub(super) fn zip(s: &State<'_, '_>, v: Value, others: Rest<Value>) -> Result<Value, Error> {
        check_items(&v)?;
        others.iter().try_for_each(check_items)?;
        f::zip(s, v, others)
    }
    pub(super) fn batch(
        s: &State<'_, '_>,
        v: Value,
        n: usize,
        fill: Option<Value>,
    ) -> Result<Value, Error> {
        check_items(&v)?;
        check_at_most("batch size", n, MAX_ITEMS)?;
        f::batch(s, v, n, fill)
    }
    pub(super) fn slice(
        s: &State<'_, '_>,
        v: Value,
        n: usize,
        fill: Option<Value>,
    ) -> Result<Value, Error> {
        check_items(&v)?;
        check_at_most("slice count", n, MAX_ITEMS)?;
        f::slice(s, v, n, fill)
    }
    pub(super) fn is_in(s: &State<'_, '_>, v: &Value, other: &Value) -> Result<bool, Error> {
        walk(v)?;
        walk(other)?;
        minijinja::tests::is_in(s, v, other)
    }

    /// Tests that compare: minijinja's own, after [`walk`] of both values.
    macro_rules! comparing {
        ($($name:ident),*) => {$(
            pub(super) fn $name(v: &Value, other: &Value) -> Result<bool, Error> {
                walk(v)?;
                walk(other)?;
                Ok(minijinja::tests::$name(v, other))
            }
        )*};
    }

    comparing!(is_eq, is_ne, is_lt, is_le, is_gt, is_ge);
    pub(super) fn join(
        s: &State<'_, '_>,
        v: &Value,
        joiner: Option<StringInput<'_>>,
    ) -> Result<Value, Error> {
        check_items(v)?;
        let sep = joiner.as_ref().map_or(0, |j| j.as_str().len());
        let bytes = match v.as_str() {
            Some(text) => text
                .len()
                .saturating_add(text.chars().count().saturating_mul(sep)),
            None => {
                let mut bytes = 0usize;
                for item in v.try_iter()? {
                    bytes = bytes
                        .saturating_add(value_bytes(&item)?)
                        .saturating_add(sep);
                    if bytes > budget_left() {
                        return Err(over_budget());
                    }
                }
                bytes
            }
        };
        charge(bytes)?;
        f::join(s, v, joiner)
    }
    pub(super) fn replace(
        s: &State<'_, '_>,
        v: StringInput<'_>,
        from: StringInput<'_>,
        to: StringInput<'_>,
    ) -> Result<Value, Error> {
        let text = v.as_str();
        let matches = match from.as_str() {
            "" => text.chars().count() + 1,
            pattern => text.matches(pattern).count(),
        };
        charge(
            text.len()
                .saturating_add(matches.saturating_mul(to.as_str().len())),
        )?;
        f::replace(s, v, from, to)
    }
    pub(super) fn indent(
        v: StringInput<'_>,
        width: Option<usize>,
        first: Option<bool>,
        blank: Option<bool>,
        k: Kwargs,
    ) -> Result<Value, Error> {
        let w = width.unwrap_or(4);
        check_at_most("indent width", w, MAX_WIDTH)?;
        let text = v.as_str();
        charge(
            text.len()
                .saturating_add((text.lines().count() + 1).saturating_mul(w)),
        )?;
        f::indent(v, width, first, blank, k)
    }
    pub(super) fn tojson(v: &Value, indent: Option<Value>, k: Kwargs) -> Result<Value, Error> {
        check_items(v)?;
        let width = indent
            .clone()
            .or_else(|| k.peek::<Option<Value>>("indent").ok().flatten())
            .map_or(0, |i| i.as_usize().unwrap_or(2));
        check_at_most("tojson indent", width, MAX_WIDTH)?;
        let mut counter = Counter {
            n: 0,
            limit: budget_left(),
        };
        let spaces = " ".repeat(width);
        let serialized = if width > 0 {
            let pretty = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
            serde::Serialize::serialize(
                v,
                &mut serde_json::Serializer::with_formatter(&mut counter, pretty),
            )
        } else {
            serde::Serialize::serialize(v, &mut serde_json::Serializer::new(&mut counter))
        };
        if serialized.is_err() && counter.n > counter.limit {
            return Err(over_budget());
        }
        // `<`, `>`, `&` and `'` come out as six bytes.
        charge(counter.n.saturating_mul(6))?;
        f::tojson(v, indent, k)
    }
    pub(super) fn format(
        s: &State<'_, '_>,
        spec: &Value,
        args: Rest<Value>,
    ) -> Result<Value, Error> {
        let text = spec.as_str().unwrap_or_default();
        // Widths and precisions: bounded by the largest number in the format string.
        let widest = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|digits| !digits.is_empty())
            .map(|digits| digits.parse::<usize>().unwrap_or(usize::MAX))
            .max()
            .unwrap_or(0);
        check_at_most("format width", widest, MAX_WIDTH)?;
        let mut bytes = text
            .len()
            .saturating_add(text.matches('%').count().saturating_mul(widest));
        for arg in args.iter() {
            bytes = bytes.saturating_add(value_bytes(arg)?);
        }
        charge(bytes)?;
        f::format(s, spec, args)
    }
    pub(super) fn string(s: &State<'_, '_>, v: &Value) -> Result<Value, Error> {
        charge(value_bytes(v)?)?;
        f::string(s, v)
    }
    pub(super) fn pprint(v: &Value) -> Result<String, Error> {
        check_items(v)?;
        let mut counter = Counter {
            n: 0,
            limit: budget_left(),
        };
        write!(counter, "{v:#?}").map_err(|_| over_budget())?;
        charge(counter.n)?;
        Ok(f::pprint(v))
    }
    pub(super) fn urlencode(v: &Value) -> Result<String, Error> {
        charge(value_bytes(v)?.saturating_mul(3))?;
        f::urlencode(v)
    }
    pub(super) fn lines(v: &Value) -> Result<Value, Error> {
        charge(value_bytes(v)?)?;
        f::lines(v)
    }
}

use guarded::*;

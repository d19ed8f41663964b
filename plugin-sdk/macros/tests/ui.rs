//! Compile-fail tests: misuse of `#[tool]` and `plugin!` is reported at the user's tokens.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

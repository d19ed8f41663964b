//! Metered operators. minijinja's `+`, `*` and `~` build strings and lists inside its VM, where an embedder
//! cannot see them: `{% set ns.a = ns.a ~ ns.a %}` in a loop doubles a string at every step (forty steps
//! ask for a terabyte, and a failed allocation aborts the process), and constant folding builds
//! `("a" * 99999999) ~ ("a" * 99999999) ~ …` while the template is compiled, that is while a workflow is
//! being uploaded.
//!
//! So every source is rewritten before minijinja compiles it: each such operator becomes a call to one of
//! the functions below (`a ~ b` → `__pipecat_cat(a, b)`), found through minijinja's own parser
//! (`unstable_machinery`, pinned by `Cargo.lock`), and a call is never folded. The functions charge the
//! bytes they build to the render's budget and refuse lists of more than [`MAX_ITEMS`] items, then do
//! exactly what the operator does (minijinja's own operator, evaluated on the checked operands).

use std::borrow::Cow;
use std::sync::LazyLock;

use minijinja::machinery::{ast, parse, parse_expr};
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Expression, Value, context};

use super::MAX_ITEMS;
use super::guard::{charge, value_bytes};

/// What a source is parsed as.
#[derive(Clone, Copy)]
pub(super) enum Source {
    /// A whole template.
    Template,
    /// One expression (a condition, or the inside of a value template).
    Expression,
}

/// `source` with every `+`, `*` and `~` replaced by a call to its metered function; borrowed when there is
/// none. A source that does not parse comes back as it is, so minijinja reports the syntax error itself.
pub(super) fn meter(source: &str, kind: Source) -> Result<Cow<'_, str>, String> {
    let mut edits = Edits {
        source,
        list: Vec::new(),
    };
    match kind {
        Source::Template => {
            let Ok(root) = parse(
                source,
                "<template>",
                // minijinja's defaults, as the environment uses them.
                Default::default(),
                Default::default(),
            ) else {
                return Ok(Cow::Borrowed(source));
            };
            edits.stmt(&root)?;
        }
        Source::Expression => {
            let Ok(root) = parse_expr(source) else {
                return Ok(Cow::Borrowed(source));
            };
            edits.expr(&root)?;
        }
    }
    edits.apply()
}

/// The functions the rewritten operators call.
pub(super) fn add_operators(env: &mut Environment<'static>) {
    env.add_function(Operator::Add.function(), add);
    env.add_function(Operator::Mul.function(), mul);
    env.add_function(Operator::Concat.function(), concat);
}

#[derive(Clone, Copy)]
enum Operator {
    Add,
    Mul,
    Concat,
}

impl Operator {
    fn of(kind: &ast::BinOpKind) -> Option<Operator> {
        match kind {
            ast::BinOpKind::Add => Some(Operator::Add),
            ast::BinOpKind::Mul => Some(Operator::Mul),
            ast::BinOpKind::Concat => Some(Operator::Concat),
            _ => None,
        }
    }

    fn symbol(self) -> char {
        match self {
            Operator::Add => '+',
            Operator::Mul => '*',
            Operator::Concat => '~',
        }
    }

    /// The opening of the call an operation becomes.
    fn opening(self) -> &'static str {
        match self {
            Operator::Add => "__pipecat_add(",
            Operator::Mul => "__pipecat_mul(",
            Operator::Concat => "__pipecat_cat(",
        }
    }

    fn function(self) -> &'static str {
        self.opening().trim_end_matches('(')
    }
}

/// One change to the source: `text` put at byte `at`, in place of `replaces` bytes.
struct Edit {
    at: usize,
    /// At one offset: closing parentheses first, then the operator's comma, then opening calls (outermost
    /// first, which is the order they were found in).
    rank: u8,
    replaces: usize,
    text: &'static str,
}

struct Edits<'s> {
    source: &'s str,
    list: Vec<Edit>,
}

impl<'s> Edits<'s> {
    fn apply(mut self) -> Result<Cow<'s, str>, String> {
        if self.list.is_empty() {
            return Ok(Cow::Borrowed(self.source));
        }
        // Stable: opening calls at one offset stay outermost first.
        self.list.sort_by_key(|edit| (edit.at, edit.rank));
        let mut out = String::with_capacity(self.source.len() + self.list.len() * 8);
        let mut copied = 0;
        for edit in &self.list {
            let text = self.source.get(copied..edit.at).ok_or_else(|| {
                "an operator of this template could not be checked for limits".to_string()
            })?;
            out.push_str(text);
            out.push_str(edit.text);
            copied = edit.at + edit.replaces;
        }
        out.push_str(&self.source[copied..]);
        Ok(Cow::Owned(out))
    }

    /// `left op right` → `function(left, right)`: the call opens where the operation starts, the operator
    /// becomes a comma and the call closes where the operation ends. The operator is the first character
    /// after the left operand that is neither space nor a closing parenthesis of that operand.
    fn operation(
        &mut self,
        op: &ast::Spanned<ast::BinOp<'_>>,
        operator: Operator,
    ) -> Result<(), String> {
        let (whole, left) = (op.span(), op.left.span());
        let (start, end) = (whole.start_offset as usize, whole.end_offset as usize);
        let after_left = left.end_offset as usize;
        let at = self
            .source
            .get(after_left..end)
            .and_then(|gap| gap.find(|c: char| !c.is_whitespace() && c != ')'))
            .map(|i| after_left + i)
            .filter(|&at| self.source[at..].starts_with(operator.symbol()))
            .ok_or_else(|| {
                format!(
                    "the `{}` at line {} could not be checked for limits",
                    operator.symbol(),
                    whole.start_line
                )
            })?;
        self.list.push(Edit {
            at: start,
            rank: 2,
            replaces: 0,
            text: operator.opening(),
        });
        self.list.push(Edit {
            at,
            rank: 1,
            replaces: 1,
            text: ",",
        });
        self.list.push(Edit {
            at: end,
            rank: 0,
            replaces: 0,
            text: ")",
        });
        Ok(())
    }

    fn stmts(&mut self, stmts: &[ast::Stmt<'_>]) -> Result<(), String> {
        stmts.iter().try_for_each(|stmt| self.stmt(stmt))
    }

    fn stmt(&mut self, stmt: &ast::Stmt<'_>) -> Result<(), String> {
        use ast::Stmt;
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::ForLoop(f) => {
                self.expr(&f.target)?;
                self.expr(&f.iter)?;
                self.opt(f.filter_expr.as_ref())?;
                self.stmts(&f.body)?;
                self.stmts(&f.else_body)
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr)?;
                self.stmts(&i.true_body)?;
                self.stmts(&i.false_body)
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.expr(target)?;
                    self.expr(value)?;
                }
                self.stmts(&w.body)
            }
            Stmt::Set(s) => {
                self.expr(&s.target)?;
                self.expr(&s.expr)
            }
            Stmt::SetBlock(s) => {
                self.expr(&s.target)?;
                self.opt(s.filter.as_ref())?;
                self.stmts(&s.body)
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled)?;
                self.stmts(&a.body)
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter)?;
                self.stmts(&f.body)
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Extends(e) => self.expr(&e.name),
            Stmt::Include(i) => self.expr(&i.name),
            Stmt::Import(i) => {
                self.expr(&i.expr)?;
                self.expr(&i.name)
            }
            Stmt::FromImport(f) => {
                self.expr(&f.expr)?;
                for (name, alias) in &f.names {
                    self.expr(name)?;
                    self.opt(alias.as_ref())?;
                }
                Ok(())
            }
            Stmt::Macro(m) => self.macro_decl(m),
            Stmt::CallBlock(c) => {
                self.call(&c.call)?;
                self.macro_decl(&c.macro_decl)
            }
            Stmt::Do(d) => self.call(&d.call),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'_>) -> Result<(), String> {
        self.exprs(&m.args)?;
        self.exprs(&m.defaults)?;
        self.stmts(&m.body)
    }

    fn call(&mut self, c: &ast::Call<'_>) -> Result<(), String> {
        self.expr(&c.expr)?;
        self.args(&c.args)
    }

    fn args(&mut self, args: &[ast::CallArg<'_>]) -> Result<(), String> {
        args.iter().try_for_each(|arg| match arg {
            ast::CallArg::Pos(e)
            | ast::CallArg::Kwarg(_, e)
            | ast::CallArg::PosSplat(e)
            | ast::CallArg::KwargSplat(e) => self.expr(e),
        })
    }

    fn exprs(&mut self, exprs: &[ast::Expr<'_>]) -> Result<(), String> {
        exprs.iter().try_for_each(|e| self.expr(e))
    }

    fn opt(&mut self, expr: Option<&ast::Expr<'_>>) -> Result<(), String> {
        expr.map_or(Ok(()), |e| self.expr(e))
    }

    fn expr(&mut self, expr: &ast::Expr<'_>) -> Result<(), String> {
        use ast::Expr;
        match expr {
            Expr::Var(_) | Expr::Const(_) => Ok(()),
            Expr::Slice(s) => {
                self.expr(&s.expr)?;
                self.opt(s.start.as_ref())?;
                self.opt(s.stop.as_ref())?;
                self.opt(s.step.as_ref())
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                if let Some(operator) = Operator::of(&b.op) {
                    self.operation(b, operator)?;
                }
                self.expr(&b.left)?;
                self.expr(&b.right)
            }
            Expr::Compare(c) => {
                self.expr(&c.expr)?;
                c.ops.iter().try_for_each(|op| self.expr(&op.expr))
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                self.expr(&i.true_expr)?;
                self.opt(i.false_expr.as_ref())
            }
            Expr::Filter(f) => {
                self.opt(f.expr.as_ref())?;
                self.args(&f.args)
            }
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr)?;
                self.expr(&g.subscript_expr)
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => self.exprs(&l.items),
            Expr::Map(m) => {
                self.exprs(&m.keys)?;
                self.exprs(&m.values)
            }
        }
    }
}

/// minijinja's own operators, run on operands that have been checked.
struct Native {
    add: Expression<'static, 'static>,
    mul: Expression<'static, 'static>,
}

static NATIVE_ENV: LazyLock<Environment<'static>> = LazyLock::new(Environment::empty);
static NATIVE: LazyLock<Native> = LazyLock::new(|| Native {
    add: NATIVE_ENV
        .compile_expression("a + b")
        .expect("`a + b` compiles"),
    mul: NATIVE_ENV
        .compile_expression("a * b")
        .expect("`a * b` compiles"),
});

fn native(expression: &Expression<'static, 'static>, a: Value, b: Value) -> Result<Value, Error> {
    expression.eval(context! { a, b })
}

fn too_many_items() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("a value of more than {MAX_ITEMS} items"),
    )
}

fn is_sequence(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// `a ~ b`: both as text.
fn concat(a: Value, b: Value) -> Result<Value, Error> {
    charge(value_bytes(&a)?.saturating_add(value_bytes(&b)?))?;
    Ok(Value::from(format!("{a}{b}")))
}

/// `a + b`: numbers, two strings, or two lists (at most [`MAX_ITEMS`] items together).
fn add(a: Value, b: Value) -> Result<Value, Error> {
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        charge(x.len().saturating_add(y.len()))?;
    } else if is_sequence(&a) && is_sequence(&b) {
        let items = a.len().unwrap_or(0).saturating_add(b.len().unwrap_or(0));
        if items > MAX_ITEMS {
            return Err(too_many_items());
        }
    }
    native(&NATIVE.add, a, b)
}

/// `a * b`: numbers, a string repeated (charged), or a list repeated (at most [`MAX_ITEMS`] items).
fn mul(a: Value, b: Value) -> Result<Value, Error> {
    let (one, times) = if b.as_usize().is_some() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if let Some(times) = times.as_usize() {
        if let Some(text) = one.as_str() {
            charge(text.len().saturating_mul(times))?;
        } else if is_sequence(one) && one.len().unwrap_or(0).saturating_mul(times) > MAX_ITEMS {
            return Err(too_many_items());
        }
    }
    native(&NATIVE.mul, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(source: &str) -> String {
        meter(source, Source::Template)
            .expect("rewrites")
            .into_owned()
    }

    #[test]
    fn each_operator_becomes_a_call() {
        assert_eq!(rewritten("{{ a ~ b }}"), "{{ __pipecat_cat(a , b) }}");
        assert_eq!(
            rewritten("{{ a ~ b ~ c }}"),
            "{{ __pipecat_cat(__pipecat_cat(a , b) , c) }}"
        );
        assert_eq!(
            rewritten("{{x~y~z}}"),
            "{{__pipecat_cat(__pipecat_cat(x,y),z)}}"
        );
        assert_eq!(
            rewritten("{{ (a) + (b) * 2 }}"),
            "{{ __pipecat_add((a) , __pipecat_mul((b) , 2)) }}"
        );
        assert_eq!(
            rewritten("{{ a | upper ~ b | lower }}"),
            "{{ __pipecat_cat(a | upper , b | lower) }}"
        );
        assert_eq!(rewritten("{{ 2 ** 3 - 1 / 2 }}"), "{{ 2 ** 3 - 1 / 2 }}");
        assert_eq!(
            meter("x ~ 'é' * 3", Source::Expression).unwrap(),
            "__pipecat_cat(x , __pipecat_mul('é' , 3))"
        );
    }

    #[test]
    fn sources_without_operators_or_that_do_not_parse_are_left_alone() {
        assert!(matches!(
            meter("{{ a }} text", Source::Template),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            meter("{{ a ~ }}", Source::Template),
            Ok(Cow::Borrowed(_))
        ));
    }
}
